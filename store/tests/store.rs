//! The store's behaviour, run against both backends: a SQLite file in a temp directory and the
//! PostgreSQL server named by `MESHOS_TEST_DATABASE_URL` (scripts/test.sh starts one).

use meshos_evidence::{leaf_hash, tree_root};
use meshos_store::{
    GatewayClientActivity, Reservation, ReservationOutcome, SealedPseudonym, Settle, SpendChange,
    Store, StoreError, StoredAlert, StoredCheckpoint, StoredControl, StoredCosignature,
    StoredEvalResult, StoredEvalSchedule, StoredHealAction, StoredIncident, StoredLogList,
    StoredSignal, TrustPoint, UsageIncrement, UsageKey, UsageLimit, sqlite_url_for_data_dir,
};
use meshos_types::{
    DecisionRecord, EvalRunRecord, EventRecord, Finding, IncidentTransitionRecord, LedgerRecord,
    Obligation, Outcome, Reason, ReidentificationRecord, Role, ToolPinRecord, Verdict, new_id,
};

fn postgres_url() -> String {
    std::env::var("MESHOS_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "MESHOS_TEST_DATABASE_URL is not set: run the suite with scripts/test.sh, which \
             starts a local PostgreSQL, or point it at one (postgres://user:pass@127.0.0.1:PORT/db)"
        )
    })
}

/// Each test gets its own tenant names, so tests can share one PostgreSQL database.
fn tenant(label: &str) -> String {
    format!("{label}-{}", uuid_like())
}

fn uuid_like() -> String {
    new_id("t").trim_start_matches("t_").to_string()
}

fn event(tenant: &str, agent: &str, outcome: Outcome) -> EventRecord {
    EventRecord {
        id: new_id("evt"),
        tenant: tenant.into(),
        agent_id: agent.into(),
        kind: "tool_call".into(),
        outcome,
        latency_ms: Some(12.345_678_9),
        input_tokens: Some(1200),
        output_tokens: Some(80),
        cost_usd: Some(0.000_317),
        model: Some("gpt-4o-mini".into()),
        tool: None,
        region: Some("aws:eu-west-1".into()),
        attributes: serde_json::json!({"zeta": 1, "alpha": {"nested": [1, 2, "x"]}, "ünïcode": "✓"}),
        created_at_ms: 1_790_000_000_123,
    }
}

fn decision(tenant: &str, agent: &str, verdict: Verdict) -> DecisionRecord {
    DecisionRecord {
        id: new_id("dec"),
        tenant: tenant.into(),
        agent_id: agent.into(),
        action: "email.send".into(),
        model: Some("gpt-4o".into()),
        tool: None,
        region: None,
        content_hmac: Some("ab".repeat(32)),
        decision: verdict,
        reasons: vec![Reason {
            policy_id: "pii-redact".into(),
            message: "personal data".into(),
        }],
        findings: vec![Finding {
            entity: "EMAIL".into(),
            start: 3,
            end: 19,
            detector: "regex:email".into(),
        }],
        obligations: vec![Obligation {
            kind: "redact".into(),
            policy_id: "pii-redact".into(),
            detail: None,
        }],
        bundle_version: "sha256:0011223344556677".into(),
        created_at_ms: 1_790_000_000_456,
    }
}

async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&sqlite_url_for_data_dir(dir.path()))
        .await
        .unwrap();
    (store, dir)
}

async fn postgres() -> Store {
    Store::connect(&postgres_url()).await.unwrap()
}

async fn records_round_trip_exactly(store: &Store) {
    let t = tenant("roundtrip");
    let ev = event(&t, "agent-1", Outcome::Violation);
    let d = decision(&t, "agent-1", Verdict::Redact);
    let idx = store
        .append_events(std::slice::from_ref(&ev))
        .await
        .unwrap();
    let didx = store.append_decision(&d).await.unwrap();
    assert_eq!(idx, vec![0]);
    assert_eq!(didx, 1);
    let (back_ev, back_idx) = store.event(&t, &ev.id).await.unwrap().unwrap();
    assert_eq!(back_ev, ev);
    assert_eq!(back_idx, 0);
    let (back_d, _) = store.decision(&t, &d.id).await.unwrap().unwrap();
    assert_eq!(back_d, d);
    // What is read back hashes to the leaf written: the basis of `audit verify`.
    let entries = store.ledger_entries(&t, 0, 2).await.unwrap();
    assert_eq!(entries.len(), 2);
    for entry in &entries {
        let record = store.ledger_record(&t, entry).await.unwrap().unwrap();
        assert_eq!(leaf_hash(&record.canonical_bytes()), entry.leaf_hash);
    }
    assert_eq!(
        entries[0].leaf_hash,
        leaf_hash(&LedgerRecord::Event(ev).canonical_bytes())
    );
    assert!(store.agent_known(&t, "agent-1").await.unwrap());
    assert!(!store.agent_known(&t, "agent-2").await.unwrap());

    // The console's reads: one record type newest first, below an index; the newest decisions.
    let d2 = decision(&t, "agent-2", Verdict::Deny);
    assert_eq!(store.append_decision(&d2).await.unwrap(), 2);
    let of_type = |before| store.ledger_entries_of_type(&t, "decision", before, 10);
    let ids: Vec<u64> = of_type(10).await.unwrap().iter().map(|e| e.index).collect();
    assert_eq!(ids, vec![2, 1]);
    let ids: Vec<u64> = of_type(2).await.unwrap().iter().map(|e| e.index).collect();
    assert_eq!(ids, vec![1]);
    let latest = store.latest_decisions(&t, None, 10).await.unwrap();
    assert_eq!(latest.len(), 2);
    let denied = store.latest_decisions(&t, Some("deny"), 10).await.unwrap();
    assert_eq!(
        denied.iter().map(|(d, _)| d.id.clone()).collect::<Vec<_>>(),
        vec![d2.id]
    );
}

async fn tenants_are_isolated(store: &Store) {
    let a = tenant("a");
    let b = tenant("b");
    let d = decision(&a, "shared-name", Verdict::Deny);
    store.append_decision(&d).await.unwrap();
    store
        .append_events(&[event(&a, "shared-name", Outcome::Ok)])
        .await
        .unwrap();
    assert!(store.decision(&b, &d.id).await.unwrap().is_none());
    assert!(!store.agent_known(&b, "shared-name").await.unwrap());
    assert!(
        store
            .recent_events(&b, "shared-name", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .recent_decisions(&b, "shared-name", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.ledger_size(&b).await.unwrap(), 0);
    assert_eq!(store.ledger_size(&a).await.unwrap(), 2);
}

async fn concurrent_appends_get_gap_free_indexes(store: &Store) {
    let t = tenant("concurrent");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                store
                    .append_events(&[event(&t, "a", Outcome::Ok), event(&t, "a", Outcome::Error)])
                    .await
            } else {
                store
                    .append_decision(&decision(&t, "a", Verdict::Allow))
                    .await
                    .map(|i| vec![i])
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap().unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (0..24).collect::<Vec<u64>>());
    let leaves = store.ledger_leaf_hashes(&t, 24).await.unwrap();
    assert_eq!(leaves.len(), 24);
}

async fn duplicate_ids_are_rejected_without_a_ledger_gap(store: &Store) {
    let t = tenant("dup");
    let d = decision(&t, "a", Verdict::Allow);
    store.append_decision(&d).await.unwrap();
    let err = store.append_decision(&d).await.unwrap_err();
    assert!(matches!(err, StoreError::Duplicate { .. }), "{err}");
    // The failed transaction rolled back its index reservation.
    assert_eq!(store.ledger_size(&t).await.unwrap(), 1);
    let next = store
        .append_decision(&decision(&t, "a", Verdict::Allow))
        .await
        .unwrap();
    assert_eq!(next, 1);
}

async fn checkpoints_and_tokens(store: &Store) {
    let t = tenant("cp");
    store
        .append_events(&[event(&t, "a", Outcome::Ok), event(&t, "a", Outcome::Ok)])
        .await
        .unwrap();
    let leaves = store.ledger_leaf_hashes(&t, 2).await.unwrap();
    let cp = StoredCheckpoint {
        tenant: t.clone(),
        size: 2,
        root: tree_root(&leaves),
        note: "origin\n2\nroot\n\n— sig\n".into(),
        created_at_ms: 5,
    };
    store.save_checkpoint(&cp).await.unwrap();
    store.save_checkpoint(&cp).await.unwrap();
    assert_eq!(store.latest_checkpoint(&t).await.unwrap(), Some(cp.clone()));
    assert_eq!(store.checkpoints(&t).await.unwrap().len(), 1);
    assert!(store.ledger_tenants().await.unwrap().contains(&t));

    let hash = format!("{:0>64}", uuid_like());
    store
        .insert_token(&new_id("tok"), &hash, &t, Role::Agent, Some("a"), 1)
        .await
        .unwrap();
    let p = store
        .principal_by_secret_hash(&hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.tenant.as_str(), p.role, p.agent_id.as_deref()),
        (t.as_str(), Role::Agent, Some("a"))
    );
    assert!(
        store
            .principal_by_secret_hash("00")
            .await
            .unwrap()
            .is_none()
    );
}

async fn pseudonyms_and_reidentifications(store: &Store) {
    let t = tenant("vault");
    let sealed = |p: &str, v: &str| SealedPseudonym {
        pseudonym: p.into(),
        entity: "EMAIL".into(),
        sealed: v.into(),
    };
    store
        .put_pseudonyms(&t, &[sealed("psn_a", "first")], 1)
        .await
        .unwrap();
    // The same pseudonym again keeps the first sealed value (it is a hash of the same value).
    store
        .put_pseudonyms(&t, &[sealed("psn_a", "second"), sealed("psn_b", "b")], 2)
        .await
        .unwrap();
    assert_eq!(
        store.pseudonym(&t, "psn_a").await.unwrap().unwrap().sealed,
        "first"
    );
    assert!(
        store
            .pseudonym(&tenant("other"), "psn_a")
            .await
            .unwrap()
            .is_none()
    );

    let record = ReidentificationRecord {
        id: new_id("rid"),
        tenant: t.clone(),
        pseudonym: "psn_a".into(),
        entity: "EMAIL".into(),
        requested_by: "tok_1".into(),
        requested_by_role: Role::Operator,
        reason: "customer callback, ticket 7".into(),
        created_at_ms: 1_790_000_000_999,
    };
    let index = store.append_reidentification(&record).await.unwrap();
    assert_eq!(index, 0);
    let (back, at) = store
        .reidentification(&t, &record.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((back, at), (record.clone(), 0));
    let entries = store.ledger_entries(&t, 0, 10).await.unwrap();
    let stored = store.ledger_record(&t, &entries[0]).await.unwrap().unwrap();
    assert_eq!(stored, LedgerRecord::Reidentification(record));
}

async fn usage_counters_add_up_per_scope_and_period(store: &Store) {
    let t = tenant("usage");
    let scopes = vec![
        ("agent".to_string(), "bot".to_string()),
        ("team".to_string(), "billing".to_string()),
    ];
    // 2026-11-22T14:00Z twice and 2026-11-23T14:00Z once.
    let day1 = 1_795_356_000_000;
    let day2 = day1 + 86_400_000;
    let inc = |at_ms, tokens, cost| UsageIncrement {
        scopes: scopes.clone(),
        at_ms,
        tokens,
        cost_micro_usd: cost,
    };
    store
        .add_usage(&t, &[inc(day1, 100, 1_500_000), inc(day1, 50, 250_000)])
        .await
        .unwrap();
    store.add_usage(&t, &[inc(day2, 7, 1)]).await.unwrap();
    let key = |scope: &str, id: &str, period: &str| UsageKey {
        scope: scope.into(),
        scope_id: id.into(),
        period: period.into(),
    };
    let got = store
        .usage(
            &t,
            &[
                key("agent", "bot", "2026-11-22"),
                key("team", "billing", "2026-11-23"),
                key("agent", "bot", "2026-11"),
                key("agent", "nobody", "2026-11"),
            ],
        )
        .await
        .unwrap();
    let values: Vec<(i64, i64)> = got.iter().map(|(_, t, c)| (*t, *c)).collect();
    assert_eq!(values, [(150, 1_750_000), (7, 1), (157, 1_750_001), (0, 0)]);
    // Counters are per tenant.
    let elsewhere = store
        .usage(&tenant("other"), &[key("agent", "bot", "2026-11")])
        .await
        .unwrap();
    assert_eq!((elsewhere[0].1, elsewhere[0].2), (0, 0));
}

/// A team-day cost counter limited to `max_micro_usd`, as a reservation's only limit.
fn team_limit(team: &str, period: &str, max_micro_usd: i64) -> UsageLimit {
    UsageLimit {
        key: UsageKey {
            scope: "team".into(),
            scope_id: team.into(),
            period: period.into(),
        },
        max_tokens: None,
        max_micro_usd: Some(max_micro_usd),
    }
}

fn reservation(id: &str, agent: &str, micro: i64, limit: UsageLimit, at_ms: i64) -> Reservation {
    Reservation {
        id: id.into(),
        agent_id: agent.into(),
        tokens: 0,
        cost_micro_usd: micro,
        limits: vec![limit],
        at_ms,
        expires_at_ms: at_ms + 60_000,
    }
}

/// 64 agents race to reserve $0.50 each against a $10 team-day limit, spread over `replicas`
/// (stores on one database); returns how many reservations were made and what the counter holds.
async fn race_for_ten_dollars(replicas: &[Store], label: &str) -> (usize, (i64, i64)) {
    let t = tenant(label);
    let at = 1_795_356_000_000; // 2026-11-22T14:00Z
    let limit = team_limit("billing", "2026-11-22", 10_000_000);
    let mut racing = Vec::new();
    for i in 0..64 {
        let store = replicas[i % replicas.len()].clone();
        let t = t.clone();
        let limit = limit.clone();
        racing.push(tokio::spawn(async move {
            store
                .reserve_usage(
                    &t,
                    reservation(&format!("dec-{i}"), &format!("a{i}"), 500_000, limit, at),
                )
                .await
                .unwrap()
        }));
    }
    let mut reserved = 0;
    for r in racing {
        match r.await.unwrap() {
            ReservationOutcome::Reserved => reserved += 1,
            ReservationOutcome::Refused { over } => assert_eq!(over, vec![limit.key.clone()]),
        }
    }
    let state = replicas[0]
        .counters(&t, std::slice::from_ref(&limit.key))
        .await
        .unwrap()[0]
        .1;
    (reserved, (state.cost_micro_usd, state.reserved_micro_usd))
}

async fn budget_reservations_hold_under_concurrency(store: &Store) {
    let (reserved, held) = race_for_ten_dollars(std::slice::from_ref(store), "reserve").await;
    assert_eq!(reserved, 20, "exactly the limit is promised");
    assert_eq!(held, (0, 10_000_000));
}

async fn reservations_settle_release_and_expire(store: &Store) {
    let t = tenant("settle");
    let at = 1_795_356_000_000;
    let limit = team_limit("billing", "2026-11-22", 1_000_000);
    let key = limit.key.clone();
    let reserve = |id: &str, agent: &str, micro: i64| {
        store.reserve_usage(&t, reservation(id, agent, micro, limit.clone(), at))
    };
    assert_eq!(
        reserve("d1", "a", 600_000).await.unwrap(),
        ReservationOutcome::Reserved
    );
    assert!(matches!(
        reserve("d2", "b", 600_000).await.unwrap(),
        ReservationOutcome::Refused { .. }
    ));
    // The event names its decision: actual spend counted, reservation released, together.
    let spend = |settle: Settle, micro: i64| SpendChange {
        tenant: t.clone(),
        increments: vec![UsageIncrement {
            scopes: vec![("team".into(), "billing".into())],
            at_ms: at,
            tokens: 0,
            cost_micro_usd: micro,
        }],
        settle: vec![settle],
    };
    // An agent's event reporting `micro` of spend and settling as told.
    let report = |agent: &'static str, settle: Settle, micro: i64| {
        let change = spend(settle, micro);
        let t = t.clone();
        async move {
            store
                .append_events_with_spend(&[event(&t, agent, Outcome::Ok)], Some(change))
                .await
                .unwrap();
        }
    };
    let spent_and_reserved = || async {
        let state = store
            .counters(&t, std::slice::from_ref(&key))
            .await
            .unwrap()[0]
            .1;
        (state.cost_micro_usd, state.reserved_micro_usd)
    };
    report("a", Settle::Decision("d1".into()), 550_000).await;
    assert_eq!(spent_and_reserved().await, (550_000, 0));
    // An event without a decision id settles its agent's oldest reservation.
    assert_eq!(
        reserve("d3", "b", 200_000).await.unwrap(),
        ReservationOutcome::Reserved
    );
    assert_eq!(
        reserve("d4", "b", 200_000).await.unwrap(),
        ReservationOutcome::Reserved
    );
    report("b", Settle::OldestOf("b".into()), 100_000).await;
    assert_eq!(spent_and_reserved().await, (650_000, 200_000));
    // Settling twice releases nothing more.
    report("b", Settle::Decision("d3".into()), 0).await;
    assert_eq!(spent_and_reserved().await, (650_000, 200_000));
    // d4 expires a minute after it was made.
    assert_eq!(store.expire_reservations(at + 59_999).await.unwrap(), 0);
    assert!(store.expire_reservations(at + 60_000).await.unwrap() >= 1);
    assert_eq!(spent_and_reserved().await, (650_000, 0));
}

/// The console's fleet view: the newest score per agent (an older flush changes nothing), one
/// point per agent and hour, pages in id order, and nothing from another tenant.
async fn fleet_view_keeps_the_newest_score_and_one_point_per_hour(store: &Store) {
    let t = tenant("fleet");
    let hour = 3_600_000;
    let point = |agent: &str, at_ms: i64, score: f64| TrustPoint {
        tenant: t.clone(),
        agent_id: agent.into(),
        at_ms,
        score,
        policy_adherence: 0.9,
        agent_reputation: 0.8,
        response_integrity: 1.0,
        risk_exposure: 1.0,
    };
    store
        .insert_trust_points(&[point("b", 10 * hour + 5, 80.0), point("a", 10 * hour, 70.0)])
        .await
        .unwrap();
    store
        .insert_trust_points(&[
            point("a", 10 * hour + 60_000, 72.0),
            point("a", 11 * hour + 1, 60.0),
        ])
        .await
        .unwrap();
    // A flush that arrives late (another replica's) does not move the score back.
    store
        .insert_trust_points(&[point("a", 10 * hour + 30_000, 99.0)])
        .await
        .unwrap();
    store
        .insert_trust_points(&[TrustPoint {
            tenant: tenant("other"),
            ..point("c", 10 * hour, 1.0)
        }])
        .await
        .unwrap();

    assert_eq!(store.fleet_size(&t).await.unwrap(), 2);
    let fleet = store.fleet_agents(&t, None, 10).await.unwrap();
    assert_eq!(
        fleet
            .iter()
            .map(|a| (a.agent_id.as_str(), a.score))
            .collect::<Vec<_>>(),
        vec![("a", 60.0), ("b", 80.0)]
    );
    assert_eq!(
        (fleet[0].first_seen_ms, fleet[0].last_seen_ms),
        (10 * hour, 11 * hour + 1)
    );
    let next = store.fleet_agents(&t, Some("a"), 10).await.unwrap();
    assert_eq!(
        next.iter().map(|a| a.agent_id.as_str()).collect::<Vec<_>>(),
        vec!["b"]
    );

    let hourly = store
        .hourly_scores(&t, "a", "b", 10 * hour + 17)
        .await
        .unwrap();
    assert_eq!(
        hourly
            .iter()
            .map(|h| (h.agent_id.as_str(), h.hour_ms, h.score))
            .collect::<Vec<_>>(),
        vec![
            ("a", 10 * hour, 72.0),
            ("a", 11 * hour, 60.0),
            ("b", 10 * hour, 80.0)
        ]
    );
    assert!(
        store
            .hourly_scores(&t, "a", "a", 12 * hour)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn trust_history_signals_and_alerts_round_trip(store: &Store) {
    let t = tenant("trust");
    let point = |at_ms: i64, score: f64| TrustPoint {
        tenant: t.clone(),
        agent_id: "a".into(),
        at_ms,
        score,
        policy_adherence: 0.9,
        agent_reputation: 0.8,
        response_integrity: 1.0,
        risk_exposure: 1.1,
    };
    store
        .insert_trust_points(&[point(1_000, 50.0), point(2_000, 60.0)])
        .await
        .unwrap();
    // A later flush in the same millisecond replaces the point.
    store
        .insert_trust_points(&[point(2_000, 61.5)])
        .await
        .unwrap();
    store
        .insert_trust_points(&[point(3_000, 70.0)])
        .await
        .unwrap();
    let history = store.trust_history(&t, "a", 1_500, 10).await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|p| (p.at_ms, p.score))
            .collect::<Vec<_>>(),
        vec![(2_000, 61.5), (3_000, 70.0)]
    );
    // With a limit, the newest points are kept, still oldest first.
    let newest = store.trust_history(&t, "a", 0, 2).await.unwrap();
    assert_eq!(
        newest.iter().map(|p| p.at_ms).collect::<Vec<_>>(),
        vec![2_000, 3_000]
    );
    assert!(
        store
            .trust_history(&tenant("other"), "a", 0, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let signal = StoredSignal {
        id: new_id("sig"),
        tenant: t.clone(),
        agent_id: "a".into(),
        metric: "latency".into(),
        detector: "cusum".into(),
        direction: "up".into(),
        baseline_mean: 120.5,
        baseline_sd: 10.25,
        observed_mean: 180.0,
        shift_sigmas: 5.8,
        samples: 77,
        explanation: "latency up".into(),
        at_ms: 5_000,
        consumed_at_ms: None,
    };
    store
        .insert_drift_signals(std::slice::from_ref(&signal))
        .await
        .unwrap();
    assert_eq!(
        store.drift_signals(&t, Some("a"), 10).await.unwrap(),
        vec![signal.clone()]
    );
    assert!(
        store
            .drift_signals(&t, Some("b"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .unconsumed_drift_signals(10_000)
            .await
            .unwrap()
            .iter()
            .any(|s| s.id == signal.id)
    );
    assert!(store.consume_drift_signal(&signal.id, 6_000).await.unwrap());
    // Only one consumer gets it.
    assert!(!store.consume_drift_signal(&signal.id, 7_000).await.unwrap());
    let consumed = store.drift_signals(&t, None, 10).await.unwrap();
    assert_eq!(consumed[0].consumed_at_ms, Some(6_000));

    let alert = StoredAlert {
        id: new_id("alr"),
        tenant: t.clone(),
        agent_id: "a".into(),
        kind: "sla.breach".into(),
        score: 42.0,
        threshold: 70.0,
        scope: "fleet default".into(),
        at_ms: 8_000,
        deliveries: serde_json::json!([]),
    };
    store.insert_alert(&alert).await.unwrap();
    let outcome = serde_json::json!([{"url": "http://x", "attempts": 2, "status": 200}]);
    store
        .set_alert_deliveries(&t, &alert.id, &outcome)
        .await
        .unwrap();
    let alerts = store.alerts(&t, None, 10).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].deliveries, outcome);
    assert_eq!(alerts[0].score, 42.0);
    assert!(
        store
            .alerts(&tenant("other"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn call_relations_group_events_by_agent_tool_model_region(store: &Store) {
    let t = tenant("relations");
    let mut batch = Vec::new();
    for (i, (agent, tool, model)) in [
        ("bot", Some("crm"), None),
        ("bot", Some("crm"), None),
        ("bot", None, Some("gpt-4o")),
        ("helper", Some("kb"), None),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = event(&t, agent, Outcome::Ok);
        e.tool = tool.map(Into::into);
        e.model = model.map(Into::into);
        e.created_at_ms = 1_000 + i as i64;
        batch.push(e);
    }
    let mut old = event(&t, "bot", Outcome::Ok);
    old.tool = Some("legacy".into());
    old.created_at_ms = 10;
    batch.push(old);
    store.append_events(&batch).await.unwrap();
    let rels = store.call_relations(&t, 500).await.unwrap();
    type Seen<'a> = (&'a str, Option<&'a str>, Option<&'a str>, u64, i64);
    let seen: Vec<Seen> = rels
        .iter()
        .map(|r| {
            (
                r.agent_id.as_str(),
                r.tool.as_deref(),
                r.model.as_deref(),
                r.events,
                r.last_seen_ms,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("bot", None, Some("gpt-4o"), 1, 1_002),
            ("bot", Some("crm"), None, 2, 1_001),
            ("helper", Some("kb"), None, 1, 1_003),
        ]
    );
    assert!(
        rels.iter()
            .all(|r| r.region.as_deref() == Some("aws:eu-west-1"))
    );
    assert!(
        store
            .call_relations(&tenant("other"), 0)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn incidents_transitions_actions_and_controls(store: &Store) {
    let t = tenant("heal");
    let inc = StoredIncident {
        id: new_id("inc"),
        tenant: t.clone(),
        kind: "drift".into(),
        severity: "high".into(),
        state: "open".into(),
        correlation_key: "tool:crm".into(),
        subject: None,
        data: serde_json::json!({"symptoms": [{"agent": "a1", "metric": "latency"}]}),
        fault_started_at_ms: 900,
        opened_at_ms: 1_000,
        updated_at_ms: 1_000,
        resolved_at_ms: None,
        version: 1,
    };
    store.insert_incident(&inc).await.unwrap();
    assert_eq!(
        store.incident(&t, &inc.id).await.unwrap().as_ref(),
        Some(&inc)
    );
    let open = store
        .open_incident_by_correlation(&t, "tool:crm")
        .await
        .unwrap();
    assert_eq!(open.map(|i| i.id), Some(inc.id.clone()));

    // Optimistic updates: the second writer with the stale version loses, and nothing of the
    // first write is lost.
    let mut diagnosed = inc.clone();
    diagnosed.state = "diagnosed".into();
    diagnosed.subject = Some("tool:crm".into());
    let v2 = store.update_incident(&diagnosed, 1).await.unwrap();
    assert_eq!(v2.version, 2);
    let mut stale = inc.clone();
    stale.state = "escalated".into();
    let err = store.update_incident(&stale, 1).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected: 1, .. }),
        "{err}"
    );
    let now = store.incident(&t, &inc.id).await.unwrap().unwrap();
    assert_eq!((now.state.as_str(), now.version), ("diagnosed", 2));

    let mut resolved = v2.clone();
    resolved.state = "resolved".into();
    resolved.resolved_at_ms = Some(5_000);
    store.update_incident(&resolved, 2).await.unwrap();
    assert!(
        store
            .open_incident_by_correlation(&t, "tool:crm")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .incidents(Some(&t), &["resolved"], 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .incidents(Some(&t), &["open"], 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Transitions are ledger leaves and come back from the ledger.
    let tr = IncidentTransitionRecord {
        id: new_id("itr"),
        tenant: t.clone(),
        incident_id: inc.id.clone(),
        from_state: Some("open".into()),
        to_state: "diagnosed".into(),
        actor: "healer".into(),
        actor_role: None,
        reason: "ranked tool:crm.latency first".into(),
        inputs: serde_json::json!({"top": ["tool:crm.latency"]}),
        created_at_ms: 2_000,
    };
    let index = store.append_incident_transition(&tr).await.unwrap();
    let entries = store.ledger_entries(&t, index, index + 1).await.unwrap();
    assert_eq!(entries.len(), 1);
    let from_ledger = store.ledger_record(&t, &entries[0]).await.unwrap();
    assert_eq!(
        from_ledger,
        Some(LedgerRecord::IncidentTransition(tr.clone()))
    );
    let timeline = store.incident_transitions(&t, &inc.id).await.unwrap();
    assert_eq!(timeline, vec![(tr.clone(), index)]);

    // A move writes the row and its ledger entry together: a stale one writes neither.
    let current = store.incident(&t, &inc.id).await.unwrap().unwrap();
    let mut reopened = current.clone();
    reopened.state = "escalated".into();
    let late = IncidentTransitionRecord {
        id: new_id("itr"),
        from_state: Some("resolved".into()),
        to_state: "escalated".into(),
        ..tr.clone()
    };
    let err = store
        .move_incident(&reopened, current.version - 1, &late)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(
        store.incident_transitions(&t, &inc.id).await.unwrap().len(),
        1
    );
    assert!(
        store
            .ledger_entries(&t, index + 1, index + 10)
            .await
            .unwrap()
            .is_empty()
    );
    let (moved, moved_index) = store
        .move_incident(&reopened, current.version, &late)
        .await
        .unwrap();
    assert_eq!(moved.version, current.version + 1);
    assert_eq!(moved_index, index + 1);
    assert_eq!(
        store.incident(&t, &inc.id).await.unwrap().unwrap().state,
        "escalated"
    );

    // A replayed heal action is recorded once.
    let action = StoredHealAction {
        idempotency_key: format!("{}:digest:revoke:apply", inc.id),
        tenant: t.clone(),
        incident_id: inc.id.clone(),
        playbook_id: "revoke-failing-tool".into(),
        step_id: "revoke".into(),
        action: "revoke_tool".into(),
        params: serde_json::json!({"tool": "crm"}),
        status: "applied".into(),
        result: serde_json::json!({"control": "set"}),
        created_at_ms: 3_000,
    };
    assert!(store.record_heal_action(&action).await.unwrap());
    assert!(!store.record_heal_action(&action).await.unwrap());
    assert_eq!(
        store.heal_action(&action.idempotency_key).await.unwrap(),
        Some(action)
    );
    assert_eq!(
        store
            .playbook_runs_since(&t, "revoke-failing-tool", "revoke", 0)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .playbook_runs_since(&t, "revoke-failing-tool", "revoke", 3_001)
            .await
            .unwrap(),
        0
    );

    // Controls: set once, replay is a no-op, clear once.
    let control = StoredControl {
        id: new_id("ctl"),
        tenant: t.clone(),
        kind: "tool_revoked".into(),
        subject: "*/crm".into(),
        spec: serde_json::json!({"agent": "*", "tool": "crm"}),
        incident_id: inc.id.clone(),
        created_at_ms: 3_000,
        cleared_at_ms: None,
    };
    assert!(store.set_control(&control).await.unwrap());
    let replay = StoredControl {
        id: new_id("ctl"),
        ..control.clone()
    };
    assert!(!store.set_control(&replay).await.unwrap());
    assert_eq!(
        store.active_controls(Some(&t)).await.unwrap(),
        vec![control.clone()]
    );
    assert!(
        store
            .clear_control(&t, "tool_revoked", "*/crm", &inc.id, 4_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .clear_control(&t, "tool_revoked", "*/crm", &inc.id, 4_001)
            .await
            .unwrap()
    );
    assert!(store.active_controls(Some(&t)).await.unwrap().is_empty());
    // The incident's next attempt may need the same control again: it comes back once.
    assert!(store.set_control(&control).await.unwrap());
    assert!(!store.set_control(&control).await.unwrap());
    assert_eq!(store.active_controls(Some(&t)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn one_leader_per_postgres_database_and_the_lease_fails_over() {
    let a = postgres().await;
    let b = postgres().await;
    let name = format!("healer-{}", uuid_like());
    let lease = a
        .try_leader_lease(&name)
        .await
        .unwrap()
        .expect("first gets it");
    assert!(
        b.try_leader_lease(&name).await.unwrap().is_none(),
        "second is refused"
    );
    lease.release().await.unwrap();
    let mut taken = b
        .try_leader_lease(&name)
        .await
        .unwrap()
        .expect("free after release");
    assert!(taken.is_held().await);
    assert!(a.try_leader_lease(&name).await.unwrap().is_none());
    // A leader that dies (its connection closes) frees the lease.
    drop(taken);
    let mut again = None;
    for _ in 0..50 {
        again = a.try_leader_lease(&name).await.unwrap();
        if again.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        again.is_some(),
        "the lease was not freed when its holder went away"
    );
}

#[tokio::test]
async fn sqlite_grants_the_lease_to_its_single_process() {
    let (s, _dir) = sqlite().await;
    assert!(s.try_leader_lease("healer").await.unwrap().is_some());
}

/// Floats inside a record's JSON (an incident's evidence: p-values, shares) hash the same after
/// the round trip through the database, or `audit verify` reports the record as changed.
async fn floats_in_record_json_verify_after_the_round_trip(store: &Store) {
    let t = tenant("floats");
    let awkward: Vec<f64> = vec![
        0.1 + 0.2,
        1.0 / 3.0,
        3.245_362_139_861_297e-12,
        0.142_857_142_857_142_85,
        2.225_073_858_507_201_4e-308,
        123_456.789_012_345_67,
        6.103_515_625e-5,
        0.012_329_471_039_402_81,
    ];
    let tr = IncidentTransitionRecord {
        id: new_id("itr"),
        tenant: t.clone(),
        incident_id: "inc_floats".into(),
        from_state: None,
        to_state: "observed".into(),
        actor: "healer".into(),
        actor_role: None,
        reason: "evidence with floats".into(),
        inputs: serde_json::json!({"p_values": awkward, "nested": [{"share": 0.7142857142857143}]}),
        created_at_ms: 3_000,
    };
    let index = store.append_incident_transition(&tr).await.unwrap();
    let entries = store.ledger_entries(&t, index, index + 1).await.unwrap();
    let record = store.ledger_record(&t, &entries[0]).await.unwrap().unwrap();
    assert_eq!(record, LedgerRecord::IncidentTransition(tr));
    assert_eq!(leaf_hash(&record.canonical_bytes()), entries[0].leaf_hash);
}

/// An eval run is stored running, its results stored, finished once with its ledger leaf
/// (re-derivable from the row), and its schedule is claimed by one caller per fire.
async fn eval_runs_results_schedules_and_baselines(store: &Store) {
    let t = tenant("evals");
    let mut run = EvalRunRecord {
        id: new_id("evr"),
        tenant: t.clone(),
        suite_id: "support-bot".into(),
        suite_digest: "ab".repeat(32),
        dataset_digest: "cd".repeat(32),
        target: "recorded:support.jsonl".into(),
        model: None,
        agent_id: "support-bot".into(),
        trigger: "manual".into(),
        status: "running".into(),
        items: 0,
        items_passed: 0,
        items_failed: 0,
        scores: serde_json::json!({}),
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0.0,
        started_at_ms: 1_000,
        finished_at_ms: 0,
    };
    store.insert_eval_run(&run).await.unwrap();
    let results: Vec<StoredEvalResult> = (0..1_200)
        .map(|i| StoredEvalResult {
            item_id: format!("item-{i:04}"),
            passed: i % 3 != 0,
            error: (i == 7).then(|| "HTTP 500 after 3 attempts".to_string()),
            latency_ms: 12.5,
            input_tokens: 10,
            output_tokens: 20,
            cost_usd: 0.000_1,
            scores: serde_json::json!([{"scorer": "exact", "passed": i % 3 != 0, "value": 1.0 / 3.0}]),
            raw: (i == 0).then(|| serde_json::json!({"input": "hi", "output": "hello"})),
        })
        .collect();
    store
        .insert_eval_results(&t, &run.id, &results)
        .await
        .unwrap();
    let back = store.eval_results(&t, &run.id).await.unwrap();
    assert_eq!(back.len(), 1_200);
    assert_eq!(back[0], results[0]);
    assert_eq!(back[7].error.as_deref(), Some("HTTP 500 after 3 attempts"));
    assert!(
        store
            .eval_results(&tenant("other"), &run.id)
            .await
            .unwrap()
            .is_empty()
    );

    // Paged by item id: every result exactly once, in order, across pages.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .eval_results_page(&t, &run.id, after.as_deref(), 500)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 500);
        after = page.last().map(|r| r.item_id.clone());
        paged.extend(page);
    }
    assert_eq!(paged, back);

    let running = store.eval_run(&t, &run.id).await.unwrap().unwrap();
    assert!(!running.is_finished());
    run.status = "completed".into();
    run.items = 1_200;
    run.items_passed = 800;
    run.items_failed = 1;
    run.scores =
        serde_json::json!({"exact": {"passed": 800, "total": 1200, "pass_rate": 2.0 / 3.0}});
    run.model = Some("gpt-test".into());
    run.finished_at_ms = 2_000;
    let index = store.finish_eval_run(&run).await.unwrap();
    let err = store.finish_eval_run(&run).await.unwrap_err();
    assert!(matches!(err, StoreError::NotRunning { .. }), "{err}");
    let entries = store.ledger_entries(&t, index, index + 1).await.unwrap();
    let record = store.ledger_record(&t, &entries[0]).await.unwrap().unwrap();
    assert_eq!(record, LedgerRecord::EvalRun(run.clone()));
    assert_eq!(leaf_hash(&record.canonical_bytes()), entries[0].leaf_hash);
    let listed = store.eval_runs(&t, Some("support-bot"), 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].ledger_index, Some(index));
    assert!(
        store
            .eval_runs(&t, Some("other-suite"), 10)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(store.eval_baseline(&t, "support-bot").await.unwrap(), None);
    store
        .pin_eval_baseline(&t, "support-bot", &run.id, 3_000)
        .await
        .unwrap();
    store
        .pin_eval_baseline(&t, "support-bot", "evr_later", 4_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .eval_baseline(&t, "support-bot")
            .await
            .unwrap()
            .as_deref(),
        Some("evr_later")
    );

    let schedule = StoredEvalSchedule {
        id: new_id("evs"),
        tenant: t.clone(),
        suite_id: "support-bot".into(),
        cron: "0 */5 * * * *".into(),
        timezone: "Europe/Paris".into(),
        catch_up: "once".into(),
        created_at_ms: 1_000,
        last_fire_ms: None,
        running_run_id: None,
        version: 0,
    };
    store.insert_eval_schedule(&schedule).await.unwrap();
    let read = store.eval_schedules(Some(&t)).await.unwrap();
    assert_eq!(read, vec![schedule.clone()]);
    // Two replicas read the same version: one claim wins.
    assert!(
        store
            .claim_eval_schedule_fire(&read[0], 300_000, Some("evr_a"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_eval_schedule_fire(&read[0], 300_000, Some("evr_b"))
            .await
            .unwrap()
    );
    let after = store.eval_schedules(Some(&t)).await.unwrap().remove(0);
    assert_eq!(after.running_run_id.as_deref(), Some("evr_a"));
    assert_eq!(after.last_fire_ms, Some(300_000));
    store
        .release_eval_schedule(&t, &after.id, "evr_a")
        .await
        .unwrap();
    let released = store.eval_schedules(Some(&t)).await.unwrap().remove(0);
    assert_eq!(released.running_run_id, None);
    assert!(
        !store
            .remove_eval_schedule(&tenant("other"), &schedule.id)
            .await
            .unwrap()
    );
    assert!(store.remove_eval_schedule(&t, &schedule.id).await.unwrap());
    assert!(store.eval_schedules(Some(&t)).await.unwrap().is_empty());
}

/// Pin records append to the ledger (re-derivable), the newest per tool is its state, and
/// clients are registered once with their activity added up.
async fn tool_pins_and_gateway_clients(store: &Store) {
    let t = tenant("gateway");
    let pin = |tool: &str, digest: &str, change: &str, status: &str, at: i64| ToolPinRecord {
        id: new_id("pin"),
        tenant: t.clone(),
        server: "fs".into(),
        tool: tool.into(),
        digest: digest.into(),
        change: change.into(),
        status: status.into(),
        findings: serde_json::json!([{"rule": "r", "score": 0.1 + 0.2}]),
        decision_id: (status == "held").then(|| "dec_1".to_string()),
        created_at_ms: at,
    };
    let first = pin("read_file", "aa", "first_seen", "pinned", 1);
    store
        .append_tool_pin(&first, Some("{\"name\":\"read_file\"}"))
        .await
        .unwrap();
    store
        .append_tool_pin(&pin("write_file", "bb", "first_seen", "pinned", 2), None)
        .await
        .unwrap();
    let changed = pin("read_file", "cc", "changed", "held", 3);
    let index = store.append_tool_pin(&changed, Some("{}")).await.unwrap();
    let entries = store.ledger_entries(&t, index, index + 1).await.unwrap();
    let record = store.ledger_record(&t, &entries[0]).await.unwrap().unwrap();
    assert_eq!(record, LedgerRecord::ToolPin(changed.clone()));
    assert_eq!(leaf_hash(&record.canonical_bytes()), entries[0].leaf_hash);

    let now = store.tool_pins(&t).await.unwrap();
    assert_eq!(now.len(), 2);
    assert_eq!(
        now[0].record, changed,
        "the newest record is the tool's state"
    );
    assert_eq!(now[1].record.tool, "write_file");
    let history = store.tool_pin_history(&t, "fs", "read_file").await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[0].definition.as_deref(),
        Some("{\"name\":\"read_file\"}")
    );
    assert!(store.tool_pins(&tenant("other")).await.unwrap().is_empty());
    let dup = store.append_tool_pin(&changed, None).await.unwrap_err();
    assert!(matches!(dup, StoreError::Duplicate { .. }), "{dup}");

    let (c, new) = store
        .gateway_client_seen(&t, "bot", "claude-code", "1.0", 10, 2)
        .await
        .unwrap()
        .unwrap();
    assert!(new && c.calls == 0 && c.decision_id.is_none());
    let (_, again) = store
        .gateway_client_seen(&t, "bot", "claude-code", "1.1", 11, 2)
        .await
        .unwrap()
        .unwrap();
    assert!(!again);
    // At most two clients per agent here: a third program name is not registered, while the
    // known ones still are, and another agent is not affected.
    assert!(
        store
            .gateway_client_seen(&t, "bot", "cursor", "1", 12, 2)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .gateway_client_seen(&t, "bot", "other", "1", 13, 2)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .gateway_client_seen(&t, "bot", "cursor", "1", 14, 2)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .gateway_client_seen(&t, "bot-2", "other", "1", 15, 2)
            .await
            .unwrap()
            .is_some()
    );
    store
        .set_gateway_client_decision(&t, "bot", "claude-code", "dec_9")
        .await
        .unwrap();
    let activity = |calls, tools: &[&str], at| GatewayClientActivity {
        tenant: t.clone(),
        agent_id: "bot".into(),
        client_name: "claude-code".into(),
        last_seen_ms: at,
        calls,
        tools_used: tools.iter().map(|s| s.to_string()).collect(),
    };
    store
        .add_gateway_client_activity(&[activity(3, &["fs__read_file"], 20)])
        .await
        .unwrap();
    store
        .add_gateway_client_activity(&[activity(2, &["fs__write_file", "fs__read_file"], 15)])
        .await
        .unwrap();
    let clients = store.gateway_clients(&t).await.unwrap();
    assert_eq!(clients.len(), 3);
    let c = clients
        .iter()
        .find(|c| c.agent_id == "bot" && c.client_name == "claude-code")
        .unwrap();
    assert_eq!((c.calls, c.last_seen_ms), (5, 20));
    assert_eq!(c.tools_used, vec!["fs__read_file", "fs__write_file"]);
    assert_eq!(c.decision_id.as_deref(), Some("dec_9"));
    assert_eq!(c.client_version, "1.0", "the version first seen is kept");
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test] async fn $name() { let (s, _dir) = super::sqlite().await; super::$name(&s).await; })*
        }
        mod on_postgres {
            $(#[tokio::test] async fn $name() { let s = super::postgres().await; super::$name(&s).await; })*
        }
    };
}

both_backends!(
    records_round_trip_exactly,
    tenants_are_isolated,
    concurrent_appends_get_gap_free_indexes,
    duplicate_ids_are_rejected_without_a_ledger_gap,
    checkpoints_and_tokens,
    pseudonyms_and_reidentifications,
    usage_counters_add_up_per_scope_and_period,
    budget_reservations_hold_under_concurrency,
    reservations_settle_release_and_expire,
    trust_history_signals_and_alerts_round_trip,
    fleet_view_keeps_the_newest_score_and_one_point_per_hour,
    call_relations_group_events_by_agent_tool_model_region,
    incidents_transitions_actions_and_controls,
    floats_in_record_json_verify_after_the_round_trip,
    eval_runs_results_schedules_and_baselines,
    tool_pins_and_gateway_clients,
);

/// Tenant log lists round-trip, a sequence number is taken once, and neither lists nor
/// checkpoints can be updated or deleted through the database (the append-only triggers).
async fn log_lists_and_checkpoints_are_append_only(store: &Store, url: &str) {
    let t = tenant("append-only");
    store
        .append_events(&[event(&t, "a", Outcome::Ok)])
        .await
        .unwrap();
    let cp = StoredCheckpoint {
        tenant: t.clone(),
        size: 1,
        root: tree_root(&store.ledger_leaf_hashes(&t, 1).await.unwrap()),
        note: "origin\n1\nroot\n\n— sig\n".into(),
        created_at_ms: 5,
    };
    store.save_checkpoint(&cp).await.unwrap();
    // Other tests' runs may have left lists in a shared PostgreSQL: continue after them.
    let seq = store
        .latest_log_list()
        .await
        .unwrap()
        .map_or(0, |l| l.seq + 1);
    let list = StoredLogList {
        seq,
        note: format!("list {t}\n"),
        created_at_ms: 7,
    };
    assert!(store.save_log_list(&list).await.unwrap());
    let again = StoredLogList {
        note: "another writer".into(),
        ..list.clone()
    };
    assert!(!store.save_log_list(&again).await.unwrap());
    assert_eq!(store.latest_log_list().await.unwrap(), Some(list.clone()));
    assert_eq!(store.log_lists().await.unwrap().last(), Some(&list));

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    for sql in [
        format!("DELETE FROM checkpoints WHERE tenant = '{t}'"),
        format!("UPDATE checkpoints SET root_hash = 'x' WHERE tenant = '{t}'"),
        format!("DELETE FROM tenant_log_lists WHERE seq = {seq}"),
        format!("UPDATE tenant_log_lists SET note = 'x' WHERE seq = {seq}"),
    ] {
        let err = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&pool)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    pool.close().await;
    assert_eq!(store.latest_checkpoint(&t).await.unwrap(), Some(cp));
    assert_eq!(store.latest_log_list().await.unwrap(), Some(list));
}

#[tokio::test]
async fn log_lists_and_checkpoints_are_append_only_on_sqlite() {
    let (s, dir) = sqlite().await;
    log_lists_and_checkpoints_are_append_only(&s, &sqlite_url_for_data_dir(dir.path())).await;
}

#[tokio::test]
async fn log_lists_and_checkpoints_are_append_only_on_postgres() {
    let s = postgres().await;
    log_lists_and_checkpoints_are_append_only(&s, &postgres_url()).await;
}

/// Witness cosignatures: kept per (checkpoint, witness), the first kept, only for a stored
/// checkpoint, read back newest-per-witness, and never updated or deleted.
async fn cosignatures_are_kept_per_checkpoint_and_witness(store: &Store, url: &str) {
    let t = tenant("cosig");
    store
        .append_events(&[event(&t, "a", Outcome::Ok), event(&t, "a", Outcome::Ok)])
        .await
        .unwrap();
    for size in [1, 2] {
        let cp = StoredCheckpoint {
            tenant: t.clone(),
            size,
            root: tree_root(&store.ledger_leaf_hashes(&t, size).await.unwrap()),
            note: format!("origin\n{size}\nroot\n\n— sig\n"),
            created_at_ms: 5,
        };
        store.save_checkpoint(&cp).await.unwrap();
    }
    let cosig = |size: u64, witness: &str, line: &str| StoredCosignature {
        tenant: t.clone(),
        size,
        witness: witness.into(),
        signature: line.into(),
        created_at_ms: 9,
    };
    assert_eq!(
        store.latest_cosignature(&t, "w1+00000001").await.unwrap(),
        None
    );
    assert!(
        store
            .save_cosignature(&cosig(1, "w1+00000001", "— w1 a"))
            .await
            .unwrap()
    );
    assert!(
        store
            .save_cosignature(&cosig(1, "w2+00000002", "— w2 b"))
            .await
            .unwrap()
    );
    assert!(
        store
            .save_cosignature(&cosig(2, "w1+00000001", "— w1 c"))
            .await
            .unwrap()
    );
    // A second answer for the same checkpoint and witness keeps the first.
    assert!(
        !store
            .save_cosignature(&cosig(2, "w1+00000001", "— w1 d"))
            .await
            .unwrap()
    );
    // Only a stored checkpoint can be cosigned.
    assert!(
        store
            .save_cosignature(&cosig(3, "w1+00000001", "— w1 e"))
            .await
            .is_err()
    );
    assert_eq!(
        store.latest_cosignature(&t, "w1+00000001").await.unwrap(),
        Some(cosig(2, "w1+00000001", "— w1 c"))
    );
    assert_eq!(
        store.latest_cosignature(&t, "w2+00000002").await.unwrap(),
        Some(cosig(1, "w2+00000002", "— w2 b"))
    );
    assert_eq!(
        store.cosignatures_at(&t, 1).await.unwrap(),
        vec![
            cosig(1, "w1+00000001", "— w1 a"),
            cosig(1, "w2+00000002", "— w2 b")
        ]
    );
    assert_eq!(store.cosignatures(&t).await.unwrap().len(), 3);
    assert!(
        store
            .cosignatures(&tenant("other"))
            .await
            .unwrap()
            .is_empty()
    );

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    for sql in [
        format!("DELETE FROM checkpoint_cosignatures WHERE tenant = '{t}'"),
        format!("UPDATE checkpoint_cosignatures SET signature = 'x' WHERE tenant = '{t}'"),
    ] {
        let err = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&pool)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    pool.close().await;
    assert_eq!(store.cosignatures(&t).await.unwrap().len(), 3);
}

#[tokio::test]
async fn cosignatures_are_kept_per_checkpoint_and_witness_on_sqlite() {
    let (s, dir) = sqlite().await;
    cosignatures_are_kept_per_checkpoint_and_witness(&s, &sqlite_url_for_data_dir(dir.path()))
        .await;
}

#[tokio::test]
async fn cosignatures_are_kept_per_checkpoint_and_witness_on_postgres() {
    let s = postgres().await;
    cosignatures_are_kept_per_checkpoint_and_witness(&s, &postgres_url()).await;
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url_for_data_dir(dir.path());
    let t = tenant("reopen");
    {
        let store = Store::connect(&url).await.unwrap();
        store
            .append_events(&[event(&t, "a", Outcome::Ok)])
            .await
            .unwrap();
        // A write-ahead log beside the database file only exists in WAL mode.
        assert!(dir.path().join("meshos.db-wal").exists());
        store.close().await;
    }
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.ledger_size(&t).await.unwrap(), 1);
}

#[tokio::test]
async fn unreachable_database_is_a_clear_error_not_a_hang() {
    let started = std::time::Instant::now();
    let err = Store::connect("postgres://meshos:secret@127.0.0.1:1/meshos")
        .await
        .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let msg = err.to_string();
    assert!(
        msg.contains("127.0.0.1:1") && !msg.contains("secret"),
        "{msg}"
    );
}

#[tokio::test]
async fn unsupported_url_is_rejected() {
    let err = Store::connect("mysql://x").await.unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }));
}

/// Two replicas (two stores, two group-commit writers) on one PostgreSQL race 64 reservations
/// against one limit: the counter row's lock makes them see each other, so exactly the limit
/// is promised. (On SQLite one file has one writer at a time, which the both-backends test
/// already covers.)
#[tokio::test]
async fn replicas_on_postgres_cannot_promise_more_than_the_limit_together() {
    let replicas = [postgres().await, postgres().await];
    let (reserved, held) = race_for_ten_dollars(&replicas, "replicas").await;
    assert_eq!(reserved, 20);
    assert_eq!(held, (0, 10_000_000));
}

/// A data directory whose name holds `?`, `:`, `#` or `%` used to be unopenable.
#[tokio::test]
async fn a_data_dir_with_url_characters_in_its_name_opens() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("odd?name:1#x%20y");
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::connect(&sqlite_url_for_data_dir(&dir))
        .await
        .unwrap();
    let t = tenant("odd");
    store
        .append_events(&[event(&t, "a", Outcome::Ok)])
        .await
        .unwrap();
    store.close().await;
    assert!(dir.join("meshos.db").exists());
}
