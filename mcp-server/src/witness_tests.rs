use super::*;
use axum::body::Body;
use axum::http::Request;
use meshos_evidence::{NoteSigner, consistency_proof, leaf_hash, tree_root};
use tower::ServiceExt as _;

const PREFIX: &str = "meshos.test/ledger";

fn log() -> NoteSigner {
    NoteSigner::from_seed("meshos-ledger", &[2; 32]).unwrap()
}

fn witness_key() -> CosignatureSigner {
    CosignatureSigner::from_seed("witness.test/w", &[3; 32]).unwrap()
}

fn open(dir: &Path) -> Arc<Witness> {
    Arc::new(
        Witness::open(
            witness_key(),
            vec![log().verifier()],
            PREFIX.into(),
            dir.into(),
        )
        .unwrap(),
    )
}

fn leaves(n: u64) -> Vec<meshos_evidence::Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

fn checkpoint(tenant: &str, leaves: &[meshos_evidence::Hash]) -> Checkpoint {
    Checkpoint {
        origin: format!("{PREFIX}/{tenant}"),
        size: leaves.len() as u64,
        root: tree_root(leaves),
    }
}

fn body(old: u64, all: &[meshos_evidence::Hash], tenant: &str) -> String {
    AddCheckpoint {
        old_size: old,
        proof: consistency_proof(all, old).unwrap(),
        note: log().sign_checkpoint(&checkpoint(tenant, all)).unwrap(),
    }
    .body()
}

async fn post(w: &Arc<Witness>, body: impl Into<Body>) -> (StatusCode, Option<String>, String) {
    let response = router(w.clone())
        .oneshot(Request::post("/add-checkpoint").body(body.into()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn cosigns_consistent_checkpoints_and_answers_each_refusal_per_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let w = open(dir.path());
    let all = leaves(9);

    let (status, _, line) = post(&w, body(0, &all[..4], "acme")).await;
    assert_eq!(status, StatusCode::OK, "{line}");
    let note = log()
        .sign_checkpoint(&checkpoint("acme", &all[..4]))
        .unwrap();
    let cosigned = meshos_evidence::add_signatures(&note, &line).unwrap();
    witness_key().verifier().verify(&cosigned).unwrap();

    // 200: consistent from the size held; the same checkpoint again is cosigned again.
    assert_eq!(post(&w, body(4, &all[..7], "acme")).await.0, StatusCode::OK);
    assert_eq!(post(&w, body(7, &all[..7], "acme")).await.0, StatusCode::OK);

    // 409 with the size held, as text/x.tlog.size: stale old, or a rolled-back log.
    let (status, ct, text) = post(&w, body(4, &all[..9], "acme")).await;
    assert_eq!(
        (status, ct.as_deref(), text.as_str()),
        (StatusCode::CONFLICT, Some("text/x.tlog.size"), "7\n")
    );
    let (status, _, text) = post(&w, body(0, &all[..5], "acme")).await;
    assert_eq!((status, text.as_str()), (StatusCode::CONFLICT, "7\n"));
    // 409: the size held with another root (a fork).
    let mut forked = all[..7].to_vec();
    forked[1] = leaf_hash(b"forged");
    let (status, _, text) = post(&w, body(7, &forked, "acme")).await;
    assert_eq!((status, text.as_str()), (StatusCode::CONFLICT, "7\n"));

    // 422: a rewritten history does not prove consistent with the root held.
    let mut rewritten = all.clone();
    rewritten[2] = leaf_hash(b"forged");
    assert_eq!(
        post(&w, body(7, &rewritten, "acme")).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // 400: old beyond the checkpoint, malformed, not UTF-8.
    let beyond = AddCheckpoint {
        old_size: 8,
        proof: vec![],
        note: log()
            .sign_checkpoint(&checkpoint("acme", &all[..7]))
            .unwrap(),
    };
    assert_eq!(post(&w, beyond.body()).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        post(&w, "old 0\n\nhello\n").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(post(&w, vec![0xff, 0xfe]).await.0, StatusCode::BAD_REQUEST);
    // 403: signed by another key.
    let stranger = NoteSigner::from_seed("meshos-ledger", &[9; 32]).unwrap();
    let foreign = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        note: stranger
            .sign_checkpoint(&checkpoint("globex", &all[..2]))
            .unwrap(),
    };
    assert_eq!(post(&w, foreign.body()).await.0, StatusCode::FORBIDDEN);
    // 404: an origin that is not `<prefix>/<tenant>`.
    for origin in [
        "other.example/log",
        "meshos.test/ledger",
        "meshos.test/ledger/",
        "meshos.test/ledgerx/acme",
        "meshos.test/ledger/a b",
    ] {
        let note = log()
            .sign_checkpoint(&Checkpoint {
                origin: origin.into(),
                size: 1,
                root: tree_root(&all[..1]),
            })
            .unwrap();
        let req = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            note,
        };
        assert_eq!(
            post(&w, req.body()).await.0,
            StatusCode::NOT_FOUND,
            "{origin}"
        );
    }
    // 413: a body over the limit is not read.
    let huge = format!("old 0\n\n{}", "x".repeat(MAX_BODY_BYTES + 1));
    assert_eq!(post(&w, huge).await.0, StatusCode::PAYLOAD_TOO_LARGE);

    // Nothing refused changed the state.
    assert_eq!(w.latest.lock().await[&format!("{PREFIX}/acme")].size, 7);
}

#[tokio::test]
async fn the_state_survives_a_restart_and_is_per_origin() {
    let dir = tempfile::tempdir().unwrap();
    let all = leaves(6);
    {
        let w = open(dir.path());
        assert_eq!(post(&w, body(0, &all[..3], "acme")).await.0, StatusCode::OK);
        assert_eq!(
            post(&w, body(0, &all[..5], "globex")).await.0,
            StatusCode::OK
        );
    }
    // A crash between writing and renaming leaves a temporary file: ignored.
    std::fs::write(dir.path().join("junk.tmp"), "half a note").unwrap();
    let w = open(dir.path());
    let (status, _, text) = post(&w, body(0, &all[..6], "acme")).await;
    assert_eq!((status, text.as_str()), (StatusCode::CONFLICT, "3\n"));
    let (status, _, text) = post(&w, body(0, &all[..6], "globex")).await;
    assert_eq!((status, text.as_str()), (StatusCode::CONFLICT, "5\n"));
    assert_eq!(post(&w, body(3, &all[..6], "acme")).await.0, StatusCode::OK);
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".note"))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");

    // A state file renamed to another origin's name is refused at start.
    let acme = w.state_path(&format!("{PREFIX}/acme"));
    std::fs::rename(&acme, dir.path().join(format!("{}.note", "0".repeat(64)))).unwrap();
    let err = Witness::open(witness_key(), vec![], PREFIX.into(), dir.path().into())
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("holds origin"), "{err:#}");
}

#[tokio::test]
async fn concurrent_submissions_cannot_roll_the_state_back() {
    let dir = tempfile::tempdir().unwrap();
    let w = open(dir.path());
    let all = leaves(40);
    assert_eq!(post(&w, body(0, &all[..1], "acme")).await.0, StatusCode::OK);
    // Many clients at once, each proving from size 1 to a different size: exactly one wins.
    let mut tasks = Vec::new();
    for n in 2..=40 {
        let w = w.clone();
        let b = body(1, &all[..n], "acme");
        tasks.push(tokio::spawn(async move { post(&w, b).await.0 }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(ok, 1);
    let held = w.latest.lock().await[&format!("{PREFIX}/acme")].size;
    let reopened = open(dir.path());
    assert_eq!(
        reopened.latest.lock().await[&format!("{PREFIX}/acme")].size,
        held
    );
}

#[test]
fn witnesses_of_a_server_are_resolved_from_the_file_and_the_flags() {
    let k1 = witness_key().verifier_key();
    let k2 = CosignatureSigner::from_seed("witness.test/w2", &[4; 32])
        .unwrap()
        .verifier_key();
    let file = vec![WitnessFileConfig {
        url: "http://127.0.0.1:7780".into(),
        key: k1.clone(),
    }];
    let got =
        resolve_endpoints(&[format!("https://w2.example/prefix  {k2}")], file.clone()).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].url.as_str(), "https://w2.example/prefix");
    let err = format!(
        "{:#}",
        resolve_endpoints(&[format!("http://other:1 {k1}")], file.clone()).unwrap_err()
    );
    assert!(err.contains("configured twice"), "{err}");
    let err = format!(
        "{:#}",
        resolve_endpoints(&["http://x".into()], vec![]).unwrap_err()
    );
    assert!(err.contains("<url> <witness verifier key>"), "{err}");
    let err = format!(
        "{:#}",
        resolve_endpoints(
            &[],
            vec![WitnessFileConfig {
                url: "ftp://x".into(),
                key: k1
            }]
        )
        .unwrap_err()
    );
    assert!(err.contains("[[witnesses]] #1"), "{err}");
}
