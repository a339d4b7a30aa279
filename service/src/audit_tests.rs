//! The attacks of issue 16 item 4, each done the way a hostile tester with write access to the
//! database would: the audit must fail on each, and a restarted server must not re-sign them.

use std::sync::Arc;

use meshos_evidence::{NoteSigner, hash_to_hex, leaf_hash};
use meshos_store::{Store, sqlite_url_for_data_dir};
use meshos_types::{LedgerRecord, Outcome, Principal, Role};
use sqlx::{Connection, SqliteConnection};

use super::{AuditReport, TailPolicy, verify_with};
use crate::mesh::tests::mesh;
use crate::{EventInput, EvidenceFetchInput, IngestDoor, Mesh};

const PREFIX: &str = "meshos.test/ledger";

fn operator(tenant: &str) -> Principal {
    Principal {
        token_id: "tok".into(),
        tenant: tenant.into(),
        role: Role::Operator,
        agent_id: None,
    }
}

fn event() -> EventInput {
    serde_json::from_value(serde_json::json!({
        "agent_id": "a", "kind": "tool_call", "outcome": Outcome::Ok
    }))
    .unwrap()
}

/// `n` events in `tenant`, each followed by a server tick (a checkpoint and a list each).
async fn grow(m: &Mesh, tenant: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let out = m
            .record_events(&operator(tenant), vec![event()], IngestDoor::Mcp)
            .await
            .unwrap();
        ids.push(out[0].event_id.clone());
        m.refresh_checkpoints().await.unwrap();
    }
    ids
}

async fn audit(m: &Mesh, tail: TailPolicy) -> AuditReport {
    verify_with(&m.store, &m.signer.verifier(), PREFIX, &[], tail)
        .await
        .unwrap()
}

async fn audit_failure(m: &Mesh) -> String {
    let report = audit(m, TailPolicy::default()).await;
    report.failure.expect("the audit should have failed")
}

/// A raw connection with the append-only triggers dropped, as an attacker would.
async fn attacker(dir: &std::path::Path) -> SqliteConnection {
    let mut conn = SqliteConnection::connect(&sqlite_url_for_data_dir(dir))
        .await
        .unwrap();
    for t in [
        "checkpoints_no_update",
        "checkpoints_no_delete",
        "tenant_log_lists_no_update",
        "tenant_log_lists_no_delete",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER {t}")))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn
}

async fn exec(conn: &mut SqliteConnection, sql: &str) {
    // Test-written SQL, no outside input.
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .unwrap();
}

/// The same deployment restarted: same store file and key, nothing in memory.
async fn restarted(dir: &std::path::Path, m: &Mesh) -> Arc<Mesh> {
    let store = Store::connect(&sqlite_url_for_data_dir(dir)).await.unwrap();
    let signer = NoteSigner::from_seed("meshos-test", &m.signer.seed()).unwrap();
    Arc::new(
        Mesh::builder(store, signer)
            .ledger_origin(PREFIX)
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn an_untouched_store_verifies_with_its_lists() {
    let dir = tempfile::tempdir().unwrap();
    let m = mesh(dir.path()).await;
    grow(&m, "t", 3).await;
    grow(&m, "u", 2).await;
    let report = audit(
        &m,
        TailPolicy {
            max_leaves: Some(0),
            max_seconds: 0,
        },
    )
    .await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert_eq!(
        (report.tenants, report.leaves, report.checkpoints),
        (2, 5, 5)
    );
    assert_eq!(report.log_lists, 5);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    // Nothing new, no new list.
    m.refresh_checkpoints().await.unwrap();
    assert_eq!(audit(&m, TailPolicy::default()).await.log_lists, 5);
}

/// (a) A record forged (record and leaf hash rewritten) and the checkpoints after it deleted.
#[tokio::test]
async fn a_forged_record_with_its_later_checkpoints_deleted_fails() {
    let dir = tempfile::tempdir().unwrap();
    let m = mesh(dir.path()).await;
    let ids = grow(&m, "t", 6).await;
    let mut conn = attacker(dir.path()).await;
    sqlx::query("UPDATE events SET kind = 'forged' WHERE id = $1")
        .bind(&ids[2])
        .execute(&mut conn)
        .await
        .unwrap();
    let (record, _) = m.store.event("t", &ids[2]).await.unwrap().unwrap();
    let leaf = leaf_hash(&LedgerRecord::Event(record).canonical_bytes());
    sqlx::query("UPDATE ledger SET leaf_hash = $1 WHERE record_id = $2")
        .bind(hash_to_hex(&leaf))
        .bind(&ids[2])
        .execute(&mut conn)
        .await
        .unwrap();
    exec(&mut conn, "DELETE FROM checkpoints WHERE size > 2").await;

    let failure = audit_failure(&m).await;
    assert!(
        failure.contains("signed tenant log list #2 names its log with 3 leaves")
            && failure.contains("no longer hash to the root it signs"),
        "{failure}"
    );
    // A restarted server does not launder the forgery with a fresh checkpoint.
    let again = restarted(dir.path(), &m).await;
    let err = again.refresh_checkpoints().await.unwrap_err().to_string();
    assert!(err.contains("refusing to sign"), "{err}");
    assert_eq!(
        m.store.latest_checkpoint("t").await.unwrap().unwrap().size,
        2
    );

    // Deleting every list after the forged leaf too leaves only an unsigned tail: it is
    // reported, and fails once it spans more than a killed signer could leave.
    exec(&mut conn, "DELETE FROM tenant_log_lists WHERE seq > 1").await;
    let report = audit(&m, TailPolicy::default()).await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert!(
        report.warnings[0].contains("4 leaves (indexes 2..6)"),
        "{:?}",
        report.warnings
    );
    let strict = audit(
        &m,
        TailPolicy {
            max_leaves: Some(0),
            max_seconds: 10,
        },
    )
    .await;
    let failure = strict.failure.unwrap();
    assert!(
        failure.contains("not covered by a signed tenant log list"),
        "{failure}"
    );
    // The log went on for a minute after the forged record (times as the store keeps them).
    exec(
        &mut conn,
        "UPDATE ledger SET created_at_ms = created_at_ms + idx * 20000",
    )
    .await;
    let failure = audit_failure(&m).await;
    assert!(failure.contains("--max-unsigned-seconds"), "{failure}");
}

/// (b) The log cut back together with its checkpoints.
#[tokio::test]
async fn a_log_cut_back_with_its_checkpoints_fails() {
    let dir = tempfile::tempdir().unwrap();
    let m = mesh(dir.path()).await;
    grow(&m, "t", 5).await;
    let mut conn = attacker(dir.path()).await;
    exec(&mut conn, "DELETE FROM events WHERE ledger_index >= 3").await;
    exec(&mut conn, "DELETE FROM ledger WHERE idx >= 3").await;
    exec(&mut conn, "UPDATE ledger_heads SET size = 3").await;
    exec(&mut conn, "DELETE FROM checkpoints WHERE size > 3").await;

    let failure = audit_failure(&m).await;
    assert_eq!(
        failure,
        "tenant t: signed tenant log list #4 names its log with 5 leaves but the ledger has 3: the log was cut back"
    );
    let err = restarted(dir.path(), &m)
        .await
        .refresh_checkpoints()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("refusing to sign"), "{err}");
}

/// (c) A whole tenant deleted.
#[tokio::test]
async fn a_deleted_tenant_fails() {
    let dir = tempfile::tempdir().unwrap();
    let m = mesh(dir.path()).await;
    grow(&m, "t", 2).await;
    grow(&m, "u", 3).await;
    let mut conn = attacker(dir.path()).await;
    for table in ["events", "ledger", "ledger_heads", "checkpoints"] {
        exec(
            &mut conn,
            &format!("DELETE FROM {table} WHERE tenant = 'u'"),
        )
        .await;
    }
    let failure = audit_failure(&m).await;
    assert_eq!(
        failure,
        "tenant u: signed tenant log list #4 names its log with 3 leaves, but the log is gone (deleted)"
    );
    // The running server does not sign a list without it either.
    let err = m.refresh_checkpoints().await.unwrap_err().to_string();
    assert!(
        err.contains("tenant u") && err.contains("no longer exists"),
        "{err}"
    );

    // Deleting a list that names it breaks their sequence; deleting them all is refused too.
    exec(&mut conn, "DELETE FROM tenant_log_lists WHERE seq = 3").await;
    let failure = audit_failure(&m).await;
    assert!(
        failure.contains("tenant log list #3 is missing"),
        "{failure}"
    );
    exec(&mut conn, "DELETE FROM tenant_log_lists").await;
    let failure = audit_failure(&m).await;
    assert!(
        failure.starts_with("no signed tenant log list is stored"),
        "{failure}"
    );
}

/// (d) `evidence_fetch` serves the size and root its signed note commits to, never the columns.
#[tokio::test]
async fn evidence_fetch_serves_the_signed_root_not_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let m = mesh(dir.path()).await;
    let ids = grow(&m, "t", 3).await;
    let mut conn = attacker(dir.path()).await;
    let zeros = "0".repeat(64);
    sqlx::query("UPDATE checkpoints SET root_hash = $1 WHERE size = 3")
        .bind(&zeros)
        .execute(&mut conn)
        .await
        .unwrap();
    let input = EvidenceFetchInput {
        decision_id: None,
        event_id: Some(ids[1].clone()),
        agent_id: None,
        limit: None,
    };
    let out = m
        .evidence_fetch(&operator("t"), input.clone())
        .await
        .unwrap();
    let signed = m
        .signer
        .verifier()
        .verify_checkpoint(&out.checkpoint.text)
        .unwrap();
    assert_eq!(out.checkpoint.root_hash, hash_to_hex(&signed.root));
    assert_ne!(out.checkpoint.root_hash, zeros);
    out.records[0].inclusion_proof.verify(&signed.root).unwrap();
    let failure = audit_failure(&m).await;
    assert!(
        failure.contains("differ from what its note signs"),
        "{failure}"
    );

    // A note that no longer verifies is not served at all.
    exec(
        &mut conn,
        "UPDATE checkpoints SET note = replace(note, 'meshos.test', 'meshos.fake') WHERE size = 3",
    )
    .await;
    let err = m.evidence_fetch(&operator("t"), input).await.unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
}

/// A signed checkpoint for more leaves than the log holds (or a different history) fails.
#[tokio::test]
async fn a_signed_checkpoint_the_log_does_not_reach_fails() {
    let dir = tempfile::tempdir().unwrap();
    let m = mesh(dir.path()).await;
    grow(&m, "t", 2).await;
    let other = [leaf_hash(b"x"), leaf_hash(b"y"), leaf_hash(b"z")];
    let cp = meshos_evidence::Checkpoint {
        origin: m.origin_for("t"),
        size: 3,
        root: meshos_evidence::tree_root(&other),
    };
    m.store
        .save_checkpoint(&meshos_store::StoredCheckpoint {
            tenant: "t".into(),
            size: 3,
            root: cp.root,
            note: m.signer.sign_checkpoint(&cp).unwrap(),
            created_at_ms: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        audit_failure(&m).await,
        "tenant t: checkpoint of size 3 commits to 3 leaves but the ledger has 2: the log was cut back"
    );
    // Once the log reaches it, the root it signs does not match.
    m.record_events(&operator("t"), vec![event()], IngestDoor::Mcp)
        .await
        .unwrap();
    let failure = audit_failure(&m).await;
    assert!(
        failure.contains("checkpoint of size 3: the ledger's leaves no longer hash"),
        "{failure}"
    );
}

/// Leaves after the newest signature: a warning while short, a failure past the limits.
#[tokio::test]
async fn an_unsigned_tail_is_reported_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    let m = mesh(dir.path()).await;
    grow(&m, "t", 2).await;
    for _ in 0..3 {
        m.record_events(&operator("t"), vec![event()], IngestDoor::Mcp)
            .await
            .unwrap();
    }
    let report = audit(&m, TailPolicy::default()).await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert!(
        report.warnings[0].starts_with("tenant t: 3 leaves (indexes 2..5)"),
        "{:?}",
        report.warnings
    );
    let report = audit(
        &m,
        TailPolicy {
            max_leaves: Some(2),
            max_seconds: 10,
        },
    )
    .await;
    assert!(report.failure.unwrap().contains("more than the 2 allowed"));
    m.refresh_checkpoints().await.unwrap();
    let report = audit(
        &m,
        TailPolicy {
            max_leaves: Some(0),
            max_seconds: 0,
        },
    )
    .await;
    assert!(
        report.failure.is_none() && report.warnings.is_empty(),
        "{report:?}"
    );
}

/// A checkpoint newer than the size a reader saw is a race, not tampering: `evidence_fetch`
/// still gets a checkpoint for exactly its leaves, and the audit still passes.
#[tokio::test]
async fn a_checkpoint_signed_after_a_reader_read_the_size_is_not_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let m = mesh(dir.path()).await;
    grow(&m, "t", 3).await;
    let leaves = m.store.ledger_leaf_hashes("t", 3).await.unwrap();
    let cp = m.checkpoint_for("t", &leaves[..2]).await.unwrap();
    assert_eq!(m.checkpoint_output(&cp).await.unwrap().size, 2);
    let report = audit(
        &m,
        TailPolicy {
            max_leaves: Some(0),
            max_seconds: 0,
        },
    )
    .await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
}
