//! Submission to witnesses against a witness that speaks C2SP tlog-witness over real HTTP (its
//! checks are `meshos_evidence::AddCheckpoint::check`, as `meshos witness serve`'s are), and the
//! audit of what they cosigned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use meshos_evidence::{
    AddCheckpoint, Checkpoint, CosignatureSigner, NoteSigner, NoteVerifier, note_text, tree_root,
};
use meshos_store::{Store, StoredCosignature, sqlite_url_for_data_dir};
use meshos_types::{Outcome, Principal, Role};
use sqlx::{Connection, SqliteConnection};

use super::WitnessEndpoint;
use crate::audit::{AuditReport, TailPolicy, WitnessPolicy, verify_with_witnesses};
use crate::{EventInput, EvidenceFetchInput, IngestDoor, Mesh};

const PREFIX: &str = "meshos.test/ledger";

/// A witness: trusted log keys, what it last cosigned per origin, and an optional canned
/// answer instead of the protocol.
struct FakeWitness {
    signer: CosignatureSigner,
    logs: Vec<NoteVerifier>,
    state: Mutex<HashMap<String, Checkpoint>>,
    canned: Mutex<Option<(u16, String)>>,
    requests: Mutex<usize>,
}

async fn add_checkpoint(State(w): State<Arc<FakeWitness>>, body: String) -> Response {
    *w.requests.lock().unwrap() += 1;
    if let Some((status, text)) = w.canned.lock().unwrap().clone() {
        return (StatusCode::from_u16(status).unwrap(), text).into_response();
    }
    let req = match AddCheckpoint::parse(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let origin = req.claimed().unwrap().origin;
    let mut state = w.state.lock().unwrap();
    match req.check(&w.logs, state.get(&origin)) {
        Ok(cp) => {
            state.insert(origin, cp);
            let line = w
                .signer
                .cosign(note_text(&req.note).unwrap(), 1_700_000_000)
                .unwrap();
            (StatusCode::OK, line).into_response()
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap();
            match e.latest_size() {
                Some(size) => (
                    status,
                    [(header::CONTENT_TYPE, "text/x.tlog.size")],
                    format!("{size}\n"),
                )
                    .into_response(),
                None => (status, e.to_string()).into_response(),
            }
        }
    }
}

async fn start_witness(name: &str, log: &NoteSigner) -> (Arc<FakeWitness>, WitnessEndpoint) {
    let w = Arc::new(FakeWitness {
        signer: CosignatureSigner::generate(name).unwrap(),
        logs: vec![log.verifier()],
        state: Mutex::default(),
        canned: Mutex::default(),
        requests: Mutex::default(),
    });
    let app = Router::new()
        .route("/w/add-checkpoint", post(add_checkpoint))
        .with_state(w.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let endpoint =
        WitnessEndpoint::new(&format!("http://{addr}/w/"), &w.signer.verifier_key()).unwrap();
    (w, endpoint)
}

async fn mesh_with(
    dir: &std::path::Path,
    signer: &NoteSigner,
    witnesses: Vec<WitnessEndpoint>,
) -> Arc<Mesh> {
    let store = Store::connect(&sqlite_url_for_data_dir(dir)).await.unwrap();
    Arc::new(
        Mesh::builder(store, signer.clone())
            .ledger_origin(PREFIX)
            .witnesses(witnesses)
            .build()
            .unwrap(),
    )
}

fn log_key() -> NoteSigner {
    NoteSigner::from_seed("meshos-test", &[4; 32]).unwrap()
}

fn operator(tenant: &str) -> Principal {
    Principal {
        token_id: "tok".into(),
        tenant: tenant.into(),
        role: Role::Operator,
        agent_id: None,
    }
}

/// `n` events, one server tick (checkpoints) after each.
async fn grow(m: &Mesh, tenant: &str, n: usize) {
    for _ in 0..n {
        let event: EventInput = serde_json::from_value(serde_json::json!({
            "agent_id": "a", "kind": "tool_call", "outcome": Outcome::Ok
        }))
        .unwrap();
        m.record_events(&operator(tenant), vec![event], IngestDoor::Mcp)
            .await
            .unwrap();
        m.refresh_checkpoints().await.unwrap();
    }
}

fn strict(witnesses: &[&WitnessEndpoint], required: Option<usize>) -> WitnessPolicy {
    WitnessPolicy {
        max_leaves: Some(0),
        ..WitnessPolicy::new(
            witnesses.iter().map(|w| w.verifier.clone()).collect(),
            required,
        )
        .unwrap()
    }
}

async fn audit(m: &Mesh, policy: &WitnessPolicy) -> AuditReport {
    verify_with_witnesses(
        &m.store,
        &m.signer.verifier(),
        PREFIX,
        &[],
        TailPolicy::default(),
        policy,
    )
    .await
    .unwrap()
}

fn counted(m: &Mesh, witness: &WitnessEndpoint, outcome: &str) -> bool {
    let line = format!(
        "meshos_witness_submissions_total{{witness=\"{}\",outcome=\"{outcome}\"}}",
        witness.label()
    );
    m.metrics().encode().lines().any(|l| l.starts_with(&line))
}

#[tokio::test]
async fn checkpoints_are_cosigned_round_after_round_and_the_audit_requires_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_key();
    let (w1, e1) = start_witness("witness.test/w1", &log).await;
    let (_w2, e2) = start_witness("witness.test/w2", &log).await;
    let m = mesh_with(dir.path(), &log, vec![e1.clone(), e2.clone()]).await;

    // Before any round: the audit with witness keys fails and names what is missing.
    grow(&m, "t", 3).await;
    let failure = audit(&m, &strict(&[&e1, &e2], None))
        .await
        .failure
        .expect("nothing cosigned yet");
    assert!(
        failure.contains("no checkpoint is cosigned") && failure.contains(&e1.label()),
        "{failure}"
    );
    // Without witness keys nothing is required.
    assert!(audit(&m, &WitnessPolicy::default()).await.failure.is_none());

    // Two tenants, two witnesses: four cosignatures; then more rounds prove consistency from
    // the size each witness holds (the witness refuses anything else).
    grow(&m, "u", 2).await;
    assert_eq!(m.submit_to_witnesses().await, 4);
    assert_eq!(m.submit_to_witnesses().await, 0, "nothing new to cosign");
    for round in 0..4 {
        grow(&m, "t", round + 1).await;
        assert_eq!(m.submit_to_witnesses().await, 2, "round {round}");
    }
    assert_eq!(w1.state.lock().unwrap()[&format!("{PREFIX}/t")].size, 13);
    let report = audit(&m, &strict(&[&e1, &e2], None)).await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert_eq!(report.cosignatures, 12);
    assert!(counted(&m, &e1, "cosigned"));

    // evidence_fetch serves the cosignatures of its checkpoint, each verifying over its text.
    let out = m
        .evidence_fetch(
            &operator("t"),
            EvidenceFetchInput {
                decision_id: None,
                event_id: None,
                agent_id: Some("a".into()),
                limit: Some(1),
            },
        )
        .await
        .unwrap();
    assert_eq!(out.checkpoint.size, 13);
    assert_eq!(out.checkpoint.cosignatures.len(), 2);
    let cosigned = meshos_evidence::add_signatures(
        &out.checkpoint.text,
        &out.checkpoint
            .cosignatures
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .unwrap();
    e1.verifier.verify(&cosigned).unwrap();
    e2.verifier.verify(&cosigned).unwrap();

    // Restarted: the cursor comes back from the stored cosignatures.
    let again = mesh_with(dir.path(), &log, vec![e1.clone(), e2.clone()]).await;
    grow(&again, "t", 2).await;
    assert_eq!(again.submit_to_witnesses().await, 2);
    assert!(
        audit(&again, &strict(&[&e1, &e2], None))
            .await
            .failure
            .is_none()
    );
}

#[tokio::test]
async fn an_unreachable_or_refusing_witness_never_blocks_signing() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_key();
    let (w, good) = start_witness("witness.test/ok", &log).await;
    // Nothing listens on port 9 of the loopback.
    let down = WitnessEndpoint::new(
        "http://127.0.0.1:9",
        &CosignatureSigner::generate("witness.test/down")
            .unwrap()
            .verifier_key(),
    )
    .unwrap();
    let m = mesh_with(dir.path(), &log, vec![down.clone(), good.clone()]).await;
    grow(&m, "t", 2).await;
    assert_eq!(
        m.submit_to_witnesses().await,
        1,
        "the reachable one cosigns"
    );
    assert!(counted(&m, &down, "unreachable"));
    grow(&m, "t", 1).await;
    assert_eq!(
        m.store.latest_checkpoint("t").await.unwrap().unwrap().size,
        3
    );

    // One of two required: covered by the reachable witness.
    assert_eq!(m.submit_to_witnesses().await, 1);
    assert!(
        audit(&m, &strict(&[&down, &good], Some(1)))
            .await
            .failure
            .is_none()
    );
    let failure = audit(&m, &strict(&[&down, &good], None))
        .await
        .failure
        .expect("two required");
    assert!(failure.contains(&down.label()), "{failure}");

    // A witness answering 200 with a cosignature by another key, or with junk, stores nothing.
    let stranger = CosignatureSigner::generate("witness.test/ok").unwrap();
    let body = m.store.latest_checkpoint("t").await.unwrap().unwrap().note;
    *w.canned.lock().unwrap() = Some((200, stranger.cosign(note_text(&body).unwrap(), 1).unwrap()));
    grow(&m, "t", 1).await;
    assert_eq!(m.submit_to_witnesses().await, 0);
    assert!(counted(&m, &good, "invalid"));
    *w.canned.lock().unwrap() = Some((200, "not a signature\n".into()));
    assert_eq!(m.submit_to_witnesses().await, 0);
    *w.canned.lock().unwrap() = Some((503, "busy".into()));
    assert_eq!(m.submit_to_witnesses().await, 0);
    assert!(counted(&m, &good, "refused"));
    assert_eq!(m.store.cosignatures_at("t", 4).await.unwrap().len(), 0);
    // Back to normal: the next round catches up.
    *w.canned.lock().unwrap() = None;
    assert_eq!(m.submit_to_witnesses().await, 1);
}

#[tokio::test]
async fn a_witness_that_knows_the_log_further_is_followed_and_a_rollback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_key();
    let (w, e) = start_witness("witness.test/w", &log).await;
    let m = mesh_with(dir.path(), &log, vec![e.clone()]).await;
    grow(&m, "t", 5).await;
    let leaves = m.store.ledger_leaf_hashes("t", 5).await.unwrap();
    let origin = format!("{PREFIX}/t");

    // The witness already cosigned size 3 (say, before this store was restored from a backup
    // that kept the leaves): the log starts at 0, gets 409 "3" and proves from 3.
    w.state.lock().unwrap().insert(
        origin.clone(),
        Checkpoint {
            origin: origin.clone(),
            size: 3,
            root: tree_root(&leaves[..3]),
        },
    );
    assert_eq!(m.submit_to_witnesses().await, 1);
    assert_eq!(w.state.lock().unwrap()[&origin].size, 5);

    // The witness holds a larger tree than the log now has: a rollback. Nothing is cosigned,
    // every round, and the audit fails once the tail is long.
    let bigger: Vec<_> = (0..9u8).map(|i| meshos_evidence::leaf_hash(&[i])).collect();
    w.state.lock().unwrap().insert(
        origin.clone(),
        Checkpoint {
            origin: origin.clone(),
            size: 9,
            root: tree_root(&bigger),
        },
    );
    grow(&m, "t", 2).await;
    let again = mesh_with(dir.path(), &log, vec![e.clone()]).await;
    assert_eq!(again.submit_to_witnesses().await, 0);
    assert!(counted(&again, &e, "conflict"));
    let failure = audit(&again, &strict(&[&e], None))
        .await
        .failure
        .expect("uncosigned tail");
    assert!(
        failure.contains("indexes 5..7") && failure.contains("--max-uncosigned-leaves"),
        "{failure}"
    );
    // Within the default time allowance the same tail passes, with a warning.
    let lenient = WitnessPolicy::new(vec![e.verifier.clone()], None).unwrap();
    let report = audit(&again, &lenient).await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("not witnessed yet")),
        "{:?}",
        report.warnings
    );

    // A fork: the witness holds the log's own size with another root.
    let size = again.store.ledger_size("t").await.unwrap();
    w.state.lock().unwrap().insert(
        origin.clone(),
        Checkpoint {
            origin: origin.clone(),
            size,
            root: tree_root(&bigger[..1]),
        },
    );
    assert_eq!(again.submit_to_witnesses().await, 0);
    assert_eq!(w.state.lock().unwrap()[&origin].size, size);
}

#[tokio::test]
async fn a_forged_or_misplaced_cosignature_fails_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_key();
    let (w, e) = start_witness("witness.test/w", &log).await;
    let m = mesh_with(dir.path(), &log, vec![e.clone()]).await;
    grow(&m, "t", 3).await;
    assert_eq!(m.submit_to_witnesses().await, 1);
    let policy = strict(&[&e], None);
    assert!(audit(&m, &policy).await.failure.is_none());

    // A cosignature by the witness's key for size 3 stored against checkpoint 2.
    let line = m.store.cosignatures_at("t", 3).await.unwrap()[0]
        .signature
        .clone();
    m.store
        .save_cosignature(&StoredCosignature {
            tenant: "t".into(),
            size: 2,
            witness: e.label(),
            signature: line,
            created_at_ms: 0,
        })
        .await
        .unwrap();
    let failure = audit(&m, &policy).await.failure.expect("misplaced");
    assert!(
        failure.contains("checkpoint of size 2") && failure.contains("does not verify"),
        "{failure}"
    );

    // A line made with another key under the witness's name and key id.
    let dir = tempfile::tempdir().unwrap();
    let m = mesh_with(dir.path(), &log, vec![e.clone()]).await;
    grow(&m, "t", 1).await;
    let impostor = CosignatureSigner::generate("witness.test/w").unwrap();
    let note = m.store.latest_checkpoint("t").await.unwrap().unwrap().note;
    let forged = impostor.cosign(note_text(&note).unwrap(), 5).unwrap();
    let (prefix, b64) = forged.trim_end().rsplit_once(' ').unwrap();
    use base64::Engine as _;
    let mut blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    blob[..4].copy_from_slice(&e.verifier.key_id().to_be_bytes());
    let forged = format!(
        "{prefix} {}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    );
    m.store
        .save_cosignature(&StoredCosignature {
            tenant: "t".into(),
            size: 1,
            witness: e.label(),
            signature: forged,
            created_at_ms: 0,
        })
        .await
        .unwrap();
    let failure = audit(&m, &policy).await.failure.expect("forged");
    assert!(failure.contains("does not verify"), "{failure}");
    // … and it is not served.
    let stored = m.store.latest_checkpoint("t").await.unwrap().unwrap();
    assert!(
        m.checkpoint_output(&stored)
            .await
            .unwrap()
            .cosignatures
            .is_empty()
    );

    // Deleted cosignatures (an attacker dropping the trigger): the tail is uncovered again.
    let dir = tempfile::tempdir().unwrap();
    let m = mesh_with(dir.path(), &log, vec![e.clone()]).await;
    w.state.lock().unwrap().clear();
    grow(&m, "t", 2).await;
    assert_eq!(m.submit_to_witnesses().await, 1);
    assert!(audit(&m, &policy).await.failure.is_none());
    let mut conn = SqliteConnection::connect(&sqlite_url_for_data_dir(dir.path()))
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER checkpoint_cosignatures_no_delete")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM checkpoint_cosignatures")
        .execute(&mut conn)
        .await
        .unwrap();
    let failure = audit(&m, &policy).await.failure.expect("deleted");
    assert!(failure.contains("no checkpoint is cosigned"), "{failure}");
}

#[test]
fn witness_endpoints_and_policies_are_checked() {
    let key = CosignatureSigner::generate("w").unwrap().verifier_key();
    let e = WitnessEndpoint::new("http://127.0.0.1:7780", &key).unwrap();
    assert_eq!(
        e.add_checkpoint_url().as_str(),
        "http://127.0.0.1:7780/add-checkpoint"
    );
    let e = WitnessEndpoint::new("https://w.example/prefix/", &key).unwrap();
    assert_eq!(
        e.add_checkpoint_url().as_str(),
        "https://w.example/prefix/add-checkpoint"
    );
    for (url, vkey, why) in [
        ("ftp://w.example", key.as_str(), "scheme"),
        ("not a url", key.as_str(), "URL"),
        ("http://w.example/?a=b", key.as_str(), "query"),
        ("http://w.example", "w+00000000+AAAA", "key"),
    ] {
        let err = WitnessEndpoint::new(url, vkey).unwrap_err();
        assert!(err.contains(why), "{url} {vkey}: {err}");
    }
    // A log's key is not a witness key.
    let log = log_key().verifier_key();
    assert!(WitnessEndpoint::new("http://w.example", &log).is_err());

    let v = e.verifier.clone();
    assert!(WitnessPolicy::new(vec![], None).is_err());
    assert!(WitnessPolicy::new(vec![v.clone()], Some(2)).is_err());
    assert!(WitnessPolicy::new(vec![v.clone()], Some(0)).is_err());
    assert!(WitnessPolicy::new(vec![v.clone(), v.clone()], None).is_err());
    assert_eq!(WitnessPolicy::new(vec![v], None).unwrap().required, 1);
}

#[tokio::test]
async fn an_auditor_asking_the_witness_sees_a_rollback_the_store_cannot_show() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_key();
    let (w, e) = start_witness("witness.test/w", &log).await;
    let m = mesh_with(dir.path(), &log, vec![e.clone()]).await;
    grow(&m, "t", 3).await;
    grow(&m, "u", 1).await;
    assert_eq!(m.submit_to_witnesses().await, 2);
    let ask = |m: Arc<Mesh>, e: WitnessEndpoint| async move {
        crate::audit::ask_witnesses(&m.store, &[e], &[])
            .await
            .unwrap()
    };
    // Consistent: asked from 0, the witness names the size it holds and gets the proof.
    assert_eq!(ask(m.clone(), e.clone()).await, Ok(2));
    grow(&m, "t", 2).await;
    assert_eq!(ask(m.clone(), e.clone()).await, Ok(2), "it moves forward");
    assert_eq!(w.state.lock().unwrap()[&format!("{PREFIX}/t")].size, 5);
    let stored = m.store.cosignatures("t").await.unwrap().len();
    assert_eq!(stored, 1, "asking stores nothing");

    // The witness holds more of the log than the store: rolled back, even if idle.
    let origin = format!("{PREFIX}/t");
    let bigger: Vec<_> = (0..9u8).map(|i| meshos_evidence::leaf_hash(&[i])).collect();
    w.state.lock().unwrap().insert(
        origin.clone(),
        Checkpoint {
            origin: origin.clone(),
            size: 9,
            root: tree_root(&bigger),
        },
    );
    let why = ask(m.clone(), e.clone()).await.unwrap_err();
    assert!(
        why.contains("rolled back") && why.contains(&e.label()),
        "{why}"
    );
    // Another history at a size the store has: a fork.
    w.state.lock().unwrap().insert(
        origin.clone(),
        Checkpoint {
            origin: origin.clone(),
            size: 4,
            root: tree_root(&bigger[..4]),
        },
    );
    let why = ask(m.clone(), e.clone()).await.unwrap_err();
    assert!(why.contains("HTTP 422"), "{why}");
    // A witness that cannot be asked fails the question too.
    let down = WitnessEndpoint::new("http://127.0.0.1:9", &e.verifier.verifier_key()).unwrap();
    let why = ask(m.clone(), down).await.unwrap_err();
    assert!(why.contains("unreachable"), "{why}");
}

#[test]
fn warnings_are_limited_per_kind_so_a_new_kind_of_failure_is_always_reported() {
    use super::{Round, SubmitError};
    let mut round = Round::default();
    let rollback = SubmitError::Conflict("rollback", "rolled back".into());
    round.warn("w", "t", &rollback);
    round.warn("w", "t", &rollback);
    round.warn("w", "t", &SubmitError::Conflict("proof", "422".into()));
    round.warn("w", "t", &SubmitError::Unreachable("down".into()));
    assert_eq!(round.warned["rollback"].1, 1, "the repeat was suppressed");
    assert_eq!(
        round.warned["proof"].1, 0,
        "another conflict is logged at once"
    );
    assert_eq!(round.warned["unreachable"].1, 0);
    assert_eq!(
        SubmitError::Conflict("proof", "x".into()).outcome(),
        "conflict"
    );
}
