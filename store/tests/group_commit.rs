//! Group commit under load, on both backends: concurrent appends share transactions, yet every
//! caller is acknowledged only once its rows are durable, indexes stay gap-free per tenant, a
//! bad row fails only its own append, and the ledger still verifies.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use meshos_evidence::leaf_hash;
use meshos_store::{Store, StoreError, sqlite_url_for_data_dir};
use meshos_types::{
    ApprovalRecord, DecisionRecord, EventRecord, Outcome, Reason, Role, Verdict, new_id,
};

fn postgres_url() -> String {
    std::env::var("MESHOS_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "MESHOS_TEST_DATABASE_URL is not set: run the suite with scripts/test.sh, which \
             starts a local PostgreSQL, or point it at one (postgres://user:pass@127.0.0.1:PORT/db)"
        )
    })
}

/// Fresh tenant names per test, so tests can share one PostgreSQL database.
fn tenant(label: &str) -> String {
    format!("{label}-{}", new_id("t").trim_start_matches("t_"))
}

fn event(tenant: &str, n: usize) -> EventRecord {
    EventRecord {
        id: new_id("evt"),
        tenant: tenant.into(),
        agent_id: format!("agent-{}", n % 3),
        kind: "tool_call".into(),
        outcome: if n.is_multiple_of(5) {
            Outcome::Error
        } else {
            Outcome::Ok
        },
        latency_ms: Some(n as f64 / 7.0),
        input_tokens: Some(n as i64),
        output_tokens: None,
        cost_usd: Some(0.000_1),
        model: Some("gpt-4o-mini".into()),
        tool: None,
        region: None,
        attributes: serde_json::json!({"n": n, "ünïcode": "✓"}),
        created_at_ms: 1_790_000_000_000 + n as i64,
    }
}

fn decision(tenant: &str, n: usize) -> DecisionRecord {
    DecisionRecord {
        id: new_id("dec"),
        tenant: tenant.into(),
        agent_id: format!("agent-{}", n % 3),
        action: "email.send".into(),
        model: Some("gpt-4o".into()),
        tool: None,
        region: Some("aws:eu-west-1".into()),
        content_hmac: Some(format!("{n:064x}")),
        decision: if n.is_multiple_of(4) {
            Verdict::RequireApproval
        } else {
            Verdict::Allow
        },
        reasons: vec![Reason {
            policy_id: "p".into(),
            message: format!("reason {n}"),
        }],
        findings: vec![],
        obligations: vec![],
        bundle_version: "sha256:00".into(),
        created_at_ms: 1_790_000_000_000 + n as i64,
    }
}

fn approval(d: &DecisionRecord) -> ApprovalRecord {
    ApprovalRecord {
        id: new_id("apr"),
        tenant: d.tenant.clone(),
        decision_id: d.id.clone(),
        approved: true,
        decided_by: "tok_op".into(),
        decided_by_role: Role::Operator,
        note: Some("ok".into()),
        created_at_ms: d.created_at_ms + 1,
    }
}

async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&sqlite_url_for_data_dir(dir.path()))
        .await
        .unwrap();
    (store, dir)
}

/// What `meshos audit verify` checks, at the store level: the tenant's log has exactly `ids`
/// at the given indexes, 0..n without a gap, and each record read back hashes to its leaf.
async fn assert_ledger_verifies(store: &Store, tenant: &str, ids: &BTreeMap<u64, String>) {
    let n = ids.len() as u64;
    assert_eq!(
        ids.keys().copied().collect::<Vec<_>>(),
        (0..n).collect::<Vec<_>>(),
        "indexes of {tenant} are not 0..{n}"
    );
    assert_eq!(store.ledger_size(tenant).await.unwrap(), n);
    let entries = store.ledger_entries(tenant, 0, n).await.unwrap();
    assert_eq!(entries.len() as u64, n);
    for entry in &entries {
        assert_eq!(
            Some(&entry.record_id),
            ids.get(&entry.index),
            "{tenant}: wrong record at ledger index {}",
            entry.index
        );
        let record = store.ledger_record(tenant, entry).await.unwrap().unwrap();
        assert_eq!(
            leaf_hash(&record.canonical_bytes()),
            entry.leaf_hash,
            "{tenant}: leaf {} does not match its record",
            entry.index
        );
    }
    // The gap check that checkpoints rely on.
    assert_eq!(
        store.ledger_leaf_hashes(tenant, n).await.unwrap().len() as u64,
        n
    );
}

/// One append of any kind; returns (record id, ledger index) per row.
async fn append_mixed(
    store: &Store,
    tenant: &str,
    n: usize,
) -> Result<Vec<(String, u64)>, StoreError> {
    match n % 4 {
        0 => {
            let evs = [event(tenant, n), event(tenant, n + 1), event(tenant, n + 2)];
            let idx = store.append_events(&evs).await?;
            Ok(evs.iter().map(|e| e.id.clone()).zip(idx).collect())
        }
        1 => {
            // A decision and its approval: two appends, in order, from one caller.
            let d = decision(tenant, 4);
            let di = store.append_decision(&d).await?;
            let a = approval(&d);
            let ai = store.append_approval(&a).await?;
            assert!(ai > di, "an approval logged before its decision");
            Ok(vec![(d.id, di), (a.id, ai)])
        }
        _ => {
            let d = decision(tenant, n);
            let i = store.append_decision(&d).await?;
            Ok(vec![(d.id, i)])
        }
    }
}

async fn many_concurrent_appends_are_acked_gap_free_and_verify(store: &Store) {
    let tenants = [tenant("gc-a"), tenant("gc-b"), tenant("gc-c")];
    let mut tasks = Vec::new();
    for n in 0..300 {
        let store = store.clone();
        let t = tenants[n % tenants.len()].clone();
        tasks.push(tokio::spawn(async move {
            let rows = append_mixed(&store, &t, n).await;
            (t, rows)
        }));
    }
    let mut per_tenant: HashMap<String, BTreeMap<u64, String>> = HashMap::new();
    for task in tasks {
        let (t, rows) = task.await.unwrap();
        for (id, index) in rows.unwrap() {
            let previous = per_tenant.entry(t.clone()).or_default().insert(index, id);
            assert!(previous.is_none(), "{t}: index {index} handed out twice");
        }
    }
    for t in &tenants {
        assert_ledger_verifies(store, t, &per_tenant[t]).await;
    }
}

async fn a_bad_row_fails_only_its_own_append(store: &Store) {
    let t = tenant("gc-dup");
    let taken = decision(&t, 1);
    store.append_decision(&taken).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..64 {
        let store = store.clone();
        let t = t.clone();
        let taken = taken.clone();
        tasks.push(tokio::spawn(async move {
            if n % 8 == 3 {
                // Reuses an id: refused, and must not take anything else down with it.
                (None, store.append_decision(&taken).await)
            } else if n % 8 == 5 {
                // A batch of events whose second row reuses the first one's id: the whole
                // append is refused, naming that id.
                let first = event(&t, n);
                let mut second = event(&t, n + 1);
                second.id = first.id.clone();
                let r = store.append_events(&[first, second]).await;
                (None, r.map(|v| v.len() as u64))
            } else {
                let d = decision(&t, n);
                let id = d.id.clone();
                (Some(id), store.append_decision(&d).await)
            }
        }));
    }
    let mut ids = BTreeMap::from([(0u64, taken.id.clone())]);
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            (Some(id), Ok(index)) => {
                assert!(ids.insert(index, id).is_none(), "index {index} reused");
            }
            (None, Err(StoreError::Duplicate { .. })) => refused += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(refused, 16);
    // Refused appends left no gap and no rows behind.
    assert_ledger_verifies(store, &t, &ids).await;
}

async fn acked_appends_survive_dropping_the_store(url: &str) {
    let t = tenant("gc-drop");
    let mut ids = BTreeMap::new();
    {
        let store = Store::connect(url).await.unwrap();
        let mut tasks = Vec::new();
        for n in 0..200 {
            let store = store.clone();
            let t = t.clone();
            tasks.push(tokio::spawn(
                async move { append_mixed(&store, &t, n).await },
            ));
        }
        for task in tasks {
            for (id, index) in task.await.unwrap().unwrap() {
                ids.insert(index, id);
            }
        }
        // Dropped without `close()`: acknowledgement alone must have made the rows durable.
        drop(store);
    }
    let reopened = Store::connect(url).await.unwrap();
    assert_ledger_verifies(&reopened, &t, &ids).await;
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { let (s, _dir) = super::sqlite().await; super::$name(&s).await; })*

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn acked_appends_survive_dropping_the_store() {
                let dir = tempfile::tempdir().unwrap();
                super::acked_appends_survive_dropping_the_store(
                    &meshos_store::sqlite_url_for_data_dir(dir.path()),
                )
                .await;
            }
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { let s = Store::connect(&super::postgres_url()).await.unwrap(); super::$name(&s).await; })*

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn acked_appends_survive_dropping_the_store() {
                super::acked_appends_survive_dropping_the_store(&super::postgres_url()).await;
            }

            use meshos_store::Store;
        }
    };
}

both_backends!(
    many_concurrent_appends_are_acked_gap_free_and_verify,
    a_bad_row_fails_only_its_own_append,
    pseudonyms_share_the_writer,
);

/// Where the killed child (below) writes, and the marker of its acknowledgement lines.
const CHILD_DIR_ENV: &str = "MESHOS_GROUP_COMMIT_CHILD_DIR";
const ACK: &str = "ACKED ";

/// The child half of `acked_appends_survive_a_killed_process`: appends from many tasks forever
/// and prints each acknowledgement as it arrives. Ignored unless run by that test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process for acked_appends_survive_a_killed_process"]
async fn child_appends_until_killed() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let store = Store::connect(&sqlite_url_for_data_dir(std::path::Path::new(&dir)))
        .await
        .unwrap();
    let (acks, mut printed) = tokio::sync::mpsc::unbounded_channel::<(String, u64)>();
    for worker in 0..32 {
        let store = store.clone();
        let acks = acks.clone();
        tokio::spawn(async move {
            for n in (worker..).step_by(32) {
                let Ok(rows) = append_mixed(&store, "killed", n).await else {
                    return;
                };
                for row in rows {
                    let _ = acks.send(row);
                }
            }
        });
    }
    drop(acks);
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    while let Some((id, index)) = printed.recv().await {
        // Printed only after the append returned Ok, i.e. after its commit.
        let _ = writeln!(out, "{ACK}{index} {id}");
        let _ = out.flush();
    }
}

/// The strongest form of "acknowledged means durable" a test can check without pulling the
/// plug: a process is SIGKILLed in the middle of a stream of group commits, and every append it
/// had acknowledged is in the database afterwards, with a gap-free, verifying ledger.
#[tokio::test]
async fn acked_appends_survive_a_killed_process() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "child_appends_until_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acked = BTreeMap::new();
        let mut lines = BufReader::new(stdout).lines();
        let mut killed = false;
        while let Some(Ok(line)) = lines.next() {
            if let Some(rest) = line.strip_prefix(ACK) {
                let (index, id) = rest.split_once(' ').unwrap();
                acked.insert(index.parse::<u64>().unwrap(), id.to_string());
                if acked.len() == 2_000 && !killed {
                    child.kill().unwrap();
                    killed = true;
                }
            }
        }
        let _ = child.wait();
        assert!(killed, "the child stopped before it was killed");
        acked
    });
    let acked = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    assert!(acked.len() >= 2_000);

    let store = Store::connect(&sqlite_url_for_data_dir(dir.path()))
        .await
        .unwrap();
    let size = store.ledger_size("killed").await.unwrap();
    // Appends the child committed but had not yet printed are fine; a printed one missing is
    // not.
    assert!(size >= acked.len() as u64);
    let entries = store.ledger_entries("killed", 0, size).await.unwrap();
    let stored: BTreeMap<u64, String> = entries
        .iter()
        .map(|e| (e.index, e.record_id.clone()))
        .collect();
    for (index, id) in &acked {
        assert_eq!(
            stored.get(index),
            Some(id),
            "acknowledged append {id} at index {index} is not in the database"
        );
    }
    assert_ledger_verifies(&store, "killed", &stored).await;
}

/// Appends that cannot be committed are refused, every one of them: a shared failure is
/// reported to each append of the batch, never turned into an acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_after_close_are_all_refused() {
    let (store, _dir) = sqlite().await;
    store.close().await;
    let mut tasks = Vec::new();
    for n in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.append_decision(&decision("closed", n)).await
        }));
    }
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert!(
            matches!(err, StoreError::Database(_) | StoreError::Batch(_)),
            "{err:?}"
        );
    }
}

/// Sealed pseudonyms go through the same writer as the decisions they accompany: concurrent
/// calls (repeating pseudonyms, as real checks do) are all stored, once each, and the ledger is
/// untouched by them.
async fn pseudonyms_share_the_writer(store: &Store) {
    let t = tenant("gc-psn");
    let sealed = |n: usize| meshos_store::SealedPseudonym {
        pseudonym: format!("psn_{}", n % 10),
        entity: "EMAIL".into(),
        sealed: format!("sealed-{}", n % 10),
    };
    let mut tasks = Vec::new();
    for n in 0..60 {
        let store = store.clone();
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            store
                .put_pseudonyms(&t, &[sealed(n), sealed(n + 1)], 1_790_000_000_000)
                .await?;
            let d = decision(&t, n);
            store.append_decision(&d).await.map(|i| (i, d.id))
        }));
    }
    let mut ids = BTreeMap::new();
    for task in tasks {
        let (index, id) = task.await.unwrap().unwrap();
        ids.insert(index, id);
    }
    for n in 0..10 {
        let got = store.pseudonym(&t, &format!("psn_{n}")).await.unwrap();
        assert_eq!(got.map(|p| p.sealed), Some(format!("sealed-{n}")));
    }
    assert_ledger_verifies(store, &t, &ids).await;
}
