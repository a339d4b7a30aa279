use super::*;
use crate::cosignature::CosignatureSigner;
use crate::merkle::{consistency_proof, leaf_hash, tree_root};
use crate::note::{NoteSigner, add_signatures};

const ORIGIN: &str = "meshos.test/ledger/acme";

fn leaves(n: u32) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

fn log() -> NoteSigner {
    NoteSigner::from_seed("meshos-ledger", &[5; 32]).expect("log key")
}

fn checkpoint(size: u32) -> Checkpoint {
    Checkpoint {
        origin: ORIGIN.into(),
        size: size as u64,
        root: tree_root(&leaves(size)),
    }
}

fn request(old: u32, new: u32) -> AddCheckpoint {
    let all = leaves(new);
    AddCheckpoint {
        old_size: old as u64,
        proof: consistency_proof(&all, old as u64).expect("proof"),
        note: log().sign_checkpoint(&checkpoint(new)).expect("signs"),
    }
}

#[test]
fn the_request_body_round_trips_in_the_spec_layout() {
    let req = request(3, 8);
    let body = req.body();
    assert!(body.starts_with("old 3\n"), "{body}");
    let lines: Vec<&str> = body.split('\n').collect();
    assert_eq!(lines.len(), 1 + req.proof.len() + 1 + 5 + 1, "{body}");
    assert_eq!(lines[1 + req.proof.len()], "");
    assert_eq!(AddCheckpoint::parse(&body), Ok(req.clone()));
    assert_eq!(req.claimed(), Ok(checkpoint(8)));
    // The spec's own example request parses (its signatures are not checked here).
    let spec = "old 20852014\n\
        PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\
        jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\
        5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n\
        /6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\
        \n\
        example.com/behind-the-sofa\n\
        20852163\n\
        CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\
        \n\
        — example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\
        — example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n";
    let parsed = AddCheckpoint::parse(spec).expect("the spec's example parses");
    assert_eq!(parsed.old_size, 20852014);
    assert_eq!(parsed.proof.len(), 4);
    assert_eq!(parsed.claimed().expect("checkpoint").size, 20852163);
    assert_eq!(parse_size_body("20852163\n"), Some(20852163));
    for bad in ["", "7", "07\n", "-1\n", "1 \n"] {
        assert_eq!(parse_size_body(bad), None, "{bad:?}");
    }
}

#[test]
fn malformed_requests_are_400() {
    let good = request(3, 8).body();
    let note = log().sign_checkpoint(&checkpoint(8)).expect("signs");
    let b64 = |h: &[u8]| B64.encode(h);
    let cases = [
        ("empty", String::new()),
        ("no old line", note.clone()),
        ("old with leading zero", good.replacen("old 3", "old 03", 1)),
        ("old negative", good.replacen("old 3", "old -3", 1)),
        ("old with a plus", good.replacen("old 3", "old +3", 1)),
        (
            "old too big",
            good.replacen("old 3", "old 18446744073709551616", 1),
        ),
        ("no space", good.replacen("old 3", "old3", 1)),
        ("no empty line", format!("old 0\n{}", note)),
        ("proof line not base64", format!("old 3\n!!!!\n\n{note}")),
        (
            "proof line short",
            format!("old 3\n{}\n\n{note}", b64(&[1; 31])),
        ),
        (
            "64 proof lines",
            format!(
                "old 3\n{}\n{note}",
                format!("{}\n", b64(&[1; 32])).repeat(64)
            ),
        ),
        (
            "note without signatures",
            format!("old 0\n\n{}", checkpoint(8).body()),
        ),
        (
            "not a checkpoint",
            format!("old 0\n\n{}", log().sign_note("hello\n").expect("signs")),
        ),
    ];
    for (why, body) in cases {
        let got = AddCheckpoint::parse(&body);
        assert!(
            matches!(got, Err(WitnessError::Malformed(_))),
            "{why}: {got:?}"
        );
        assert_eq!(got.map_err(|e| e.status()).err(), Some(400), "{why}");
    }
    // 63 proof lines are allowed by the form (the proof may still not verify).
    let most = format!(
        "old 3\n{}\n{note}",
        format!("{}\n", b64(&[1; 32])).repeat(63)
    );
    assert_eq!(AddCheckpoint::parse(&most).expect("parses").proof.len(), 63);
}

#[test]
fn the_checks_run_in_the_spec_order_with_its_status_codes() {
    let trusted = [log().verifier()];
    let at5 = checkpoint(5);

    // First contact: old 0, empty proof.
    assert_eq!(request(0, 5).check(&trusted, None), Ok(at5.clone()));
    // Then consistency from the size last cosigned.
    assert_eq!(request(5, 9).check(&trusted, Some(&at5)), Ok(checkpoint(9)));
    // The same size again with the same root is cosigned again (a fresh timestamp).
    assert_eq!(request(5, 5).check(&trusted, Some(&at5)), Ok(at5.clone()));

    // 403: signed by a key the witness does not trust for the origin.
    let stranger = NoteSigner::from_seed("meshos-ledger", &[6; 32]).expect("key");
    let mut forged = request(0, 5);
    forged.note = stranger.sign_checkpoint(&at5).expect("signs");
    let e = forged.check(&trusted, None).expect_err("untrusted");
    assert_eq!(e.status(), 403, "{e}");
    assert_eq!(
        request(0, 5).check(&[], None).map_err(|e| e.status()),
        Err(403)
    );
    // … or one whose signature line by the trusted key is forged.
    let mut tampered = request(0, 5);
    tampered.note = tampered.note.replace("\n5\n", "\n6\n");
    assert_eq!(
        tampered.check(&trusted, None).map_err(|e| e.status()),
        Err(403)
    );

    // 400: old beyond the new size.
    let e = request(5, 5);
    let e = AddCheckpoint { old_size: 6, ..e }
        .check(&trusted, Some(&at5))
        .expect_err("old > size");
    assert_eq!((e.status(), e.latest_size()), (400, None));

    // 409: old is not what the witness holds, with the size it holds.
    let e = request(3, 9)
        .check(&trusted, Some(&at5))
        .expect_err("stale");
    assert_eq!((e.status(), e.latest_size()), (409, Some(5)));
    let e = request(3, 9)
        .check(&trusted, None)
        .expect_err("never cosigned");
    assert_eq!((e.status(), e.latest_size()), (409, Some(0)));
    // … and a rolled-back log: the witness holds 9, the log offers 5.
    let e = request(5, 5)
        .check(&trusted, Some(&checkpoint(9)))
        .expect_err("rollback");
    assert_eq!((e.status(), e.latest_size()), (409, Some(9)));

    // 409: same size, another root (a fork).
    let fork = Checkpoint {
        root: leaf_hash(b"fork"),
        ..at5.clone()
    };
    let mut forked = request(5, 5);
    forked.note = log().sign_checkpoint(&fork).expect("signs");
    let e = forked.check(&trusted, Some(&at5)).expect_err("fork");
    assert_eq!((e.status(), e.latest_size()), (409, Some(5)));

    // 422: the proof does not lead from the root held to the new one.
    let mut bad = request(5, 9);
    bad.proof[0] = leaf_hash(b"x");
    assert_eq!(
        bad.check(&trusted, Some(&at5)).map_err(|e| e.status()),
        Err(422)
    );
    // A log that rewrote leaf 2 proves nothing from the held root.
    let rewritten: Vec<Hash> = leaves(9)
        .into_iter()
        .enumerate()
        .map(|(i, l)| if i == 2 { leaf_hash(b"forged") } else { l })
        .collect();
    let fake = AddCheckpoint {
        old_size: 5,
        proof: consistency_proof(&rewritten, 5).expect("proof"),
        note: log()
            .sign_checkpoint(&Checkpoint {
                origin: ORIGIN.into(),
                size: 9,
                root: tree_root(&rewritten),
            })
            .expect("signs"),
    };
    assert_eq!(
        fake.check(&trusted, Some(&at5)).map_err(|e| e.status()),
        Err(422)
    );
    // First contact with a non-empty proof.
    let mut extra = request(0, 5);
    extra.proof.push(leaf_hash(b"x"));
    assert_eq!(
        extra.check(&trusted, None).map_err(|e| e.status()),
        Err(422)
    );
}

#[test]
fn a_witness_cosignature_attaches_to_the_submitted_note() {
    let req = request(0, 5);
    let cp = req.check(&[log().verifier()], None).expect("accepted");
    let w = CosignatureSigner::from_seed("witness.test/w", &[8; 32]).expect("key");
    let text = note_text(&req.note).expect("text");
    assert_eq!(Checkpoint::parse(text), Ok(cp));
    let line = w.cosign(text, 1_700_000_000).expect("cosigns");
    let cosigned = add_signatures(&req.note, &line).expect("attaches");
    assert_eq!(
        w.verifier().verify(&cosigned).expect("verifies").time,
        1_700_000_000
    );
    // A client submits the cosigned note to the next witness: extra signatures are fine.
    let next = AddCheckpoint {
        note: cosigned,
        ..req
    };
    assert!(next.check(&[log().verifier()], None).is_ok());
}
