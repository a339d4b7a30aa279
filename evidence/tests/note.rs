//! Signed notes and checkpoints, including vectors published by the Go
//! reference implementation (`golang.org/x/mod/sumdb/note` package docs and
//! tests), the C2SP signed-note spec, and real `sum.golang.org` checkpoints.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use meshos_evidence::{
    Checkpoint, EvidenceError, NoteSigner, NoteVerifier, hash_to_hex, leaf_hash, tree_root,
};

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                          then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const SPEC_NOTE: &str = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

/// The Go checksum database key every `go` command trusts by default.
const SUMDB_VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
const SUMDB_CHECKPOINTS: [&str; 2] = [
    "go.sum database tree\n31700353\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n\n— sum.golang.org Az3grnmrIUEDFqHzAElIQCPNoRFRAAdFo47fooyWKMHb89k11GJh5zHIfNCOBmwn/C3YI8oW9/C8DJ87F61QqspBYwM=\n",
    "go.sum database tree\n65209736\n5+uGFjx6xBZG8ip1+wi77v+grwbhhukIrxEUS8PXvRo=\n\n— sum.golang.org Az3grnbssgK7ubgFX36gVETtNv0U23qxyAhAMai2QUfeGa3nB/akvkMdlUErfcZz7l/R3cVtYspg3dxXABkGZZKdsQ8=\n",
];

fn peter_note() -> String {
    format!("{PETER_TEXT}\n{PETER_SIG}")
}

#[test]
fn go_reference_note_verifies() {
    let v = NoteVerifier::parse(PETER_VKEY).expect("Go example key parses");
    assert_eq!(v.name(), "PeterNeumann");
    assert_eq!(v.key_id(), 0xc74f20a3);
    assert_eq!(v.verifier_key(), PETER_VKEY);
    let note = peter_note();
    assert_eq!(v.verify_note(&note), Ok(PETER_TEXT));
}

#[test]
fn signing_with_the_go_reference_key_reproduces_its_note_byte_for_byte() {
    // Ed25519 is deterministic, so equal bytes mean Go verifiers accept ours.
    let signer = NoteSigner::from_signer_key(PETER_SKEY).expect("Go example signer key parses");
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.key_id(), 0xc74f20a3);
    assert_eq!(signer.verifier_key(), PETER_VKEY);
    assert_eq!(signer.signer_key(), PETER_SKEY);
    assert_eq!(signer.sign_note(PETER_TEXT).expect("signs"), peter_note());

    let again = NoteSigner::from_seed("PeterNeumann", &signer.seed()).expect("seed");
    assert_eq!(again.verifier_key(), PETER_VKEY);
}

#[test]
fn go_reference_doubly_signed_note_verifies_under_each_key() {
    let note = format!("{PETER_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    for vkey in [PETER_VKEY, ENOCH_VKEY] {
        let v = NoteVerifier::parse(vkey).expect("parses");
        assert_eq!(v.verify_note(&note), Ok(PETER_TEXT), "{vkey}");
    }
}

#[test]
fn c2sp_spec_example_verifies() {
    let v = NoteVerifier::parse(SPEC_VKEY).expect("spec key parses");
    assert_eq!(v.key_id(), 0x530d903a);
    assert_eq!(
        v.verify_note(SPEC_NOTE),
        Ok("This is an example message.\n")
    );
}

#[test]
fn real_go_checksum_database_checkpoints_verify() {
    let v = NoteVerifier::parse(SUMDB_VKEY).expect("sum.golang.org key parses");
    let first = v
        .verify_checkpoint(SUMDB_CHECKPOINTS[0])
        .expect("published checkpoint verifies");
    assert_eq!(first.origin, "go.sum database tree");
    assert_eq!(first.size, 31_700_353);
    let second = v
        .verify_checkpoint(SUMDB_CHECKPOINTS[1])
        .expect("published checkpoint verifies");
    assert_eq!(second.size, 65_209_736);
    assert_eq!(
        B64.encode(second.root),
        "5+uGFjx6xBZG8ip1+wi77v+grwbhhukIrxEUS8PXvRo="
    );
    // Changing the size by one must break the signature.
    let forged = SUMDB_CHECKPOINTS[1].replace("65209736", "65209737");
    assert_eq!(
        v.verify_checkpoint(&forged),
        Err(EvidenceError::BadSignature)
    );
}

#[test]
fn sign_and_verify_round_trip() {
    let signer = NoteSigner::generate("meshos.example/ledger").expect("valid name");
    let v = signer.verifier();
    let text = "hello\n\nworld, with a blank line inside\n";
    let note = signer.sign_note(text).expect("signs");
    assert!(note.starts_with(text));
    assert!(note.contains("\n\n— meshos.example/ledger "));
    assert_eq!(v.verify_note(&note), Ok(text));

    // The public key string survives a round trip and still verifies.
    let vkey = signer.verifier_key();
    let parsed = NoteVerifier::parse(&vkey).expect("own key parses");
    assert_eq!(parsed.verifier_key(), vkey);
    assert_eq!(parsed.key_id(), signer.key_id());
    assert_eq!(parsed.verify_note(&note), Ok(text));

    // So does the secret, through the seed and through the signer key string.
    let from_seed = NoteSigner::from_seed(signer.name(), &signer.seed()).expect("seed");
    assert_eq!(from_seed.verifier_key(), vkey);
    let from_skey = NoteSigner::from_signer_key(&signer.signer_key()).expect("skey");
    assert_eq!(from_skey.verifier_key(), vkey);
    assert_eq!(from_skey.sign_note(text), Ok(note));
}

#[test]
fn tampered_notes_are_rejected() {
    let signer = NoteSigner::generate("log.example").expect("valid name");
    let v = signer.verifier();
    let note = signer.sign_note("size 10\n").expect("signs");

    let changed_text = note.replacen("size 10", "size 11", 1);
    assert_eq!(
        v.verify_note(&changed_text),
        Err(EvidenceError::BadSignature)
    );

    // Flip one bit of the Ed25519 signature, keeping the key id intact.
    let (head, sig_line) = note.rsplit_once(' ').expect("signature line");
    let mut blob = B64
        .decode(sig_line.trim_end())
        .expect("our own signature is base64");
    blob[10] ^= 1;
    let changed_sig = format!("{head} {}\n", B64.encode(&blob));
    assert_eq!(
        v.verify_note(&changed_sig),
        Err(EvidenceError::BadSignature)
    );

    // A truncated signature claiming our key id is a bad signature too.
    blob.truncate(40);
    let short_sig = format!("{head} {}\n", B64.encode(&blob));
    assert_eq!(v.verify_note(&short_sig), Err(EvidenceError::BadSignature));

    // A bad signature by the trusted key is not excused by a good one.
    let twice = format!(
        "{note}{}",
        changed_sig.rsplit_once("\n\n").expect("split").1
    );
    assert_eq!(v.verify_note(&twice), Err(EvidenceError::BadSignature));
}

#[test]
fn notes_signed_by_other_keys_are_rejected() {
    let ours = NoteSigner::generate("log.example").expect("valid name");
    let impostor = NoteSigner::generate("log.example").expect("valid name");
    let note = impostor.sign_note("size 10\n").expect("signs");
    let err = ours.verifier().verify_note(&note).expect_err("not our key");
    assert!(matches!(&err, EvidenceError::UnknownKey(k) if k.starts_with("log.example+")));

    // Relabelling someone else's signature with our name does not help.
    let other = NoteSigner::generate("other.example").expect("valid name");
    let relabelled = other
        .sign_note("size 10\n")
        .expect("signs")
        .replace("— other.example ", "— log.example ");
    assert!(matches!(
        ours.verifier().verify_note(&relabelled),
        Err(EvidenceError::UnknownKey(_))
    ));

    // Go's example note is not signed by our key either.
    assert!(matches!(
        ours.verifier().verify_note(&peter_note()),
        Err(EvidenceError::UnknownKey(_))
    ));
}

#[test]
fn malformed_notes_are_rejected_with_a_reason() {
    let v = NoteVerifier::parse(PETER_VKEY).expect("parses");
    let good = peter_note();
    let cases = [
        ("no signature block", PETER_TEXT.to_owned()),
        ("no trailing newline", good.trim_end().to_owned()),
        ("no signature lines", format!("{PETER_TEXT}\n")),
        ("trailing blank line", format!("{good}\n")),
        ("hyphen instead of em dash", good.replace('—', "-")),
        (
            "no space after name",
            good.replace("PeterNeumann x08", "PeterNeumannx08"),
        ),
        ("not base64", good.replace("x08go/", "x08go!")),
        (
            "too short for a key id",
            format!("{PETER_TEXT}\n— PeterNeumann AAA=\n"),
        ),
        (
            "key id only",
            format!("{PETER_TEXT}\n— PeterNeumann AAAAAA==\n"),
        ),
        ("control character", good.replace("answer", "ans\u{7}wer")),
        (
            "carriage return",
            good.replace("problem,\n", "problem,\r\n"),
        ),
        (
            "name with a plus",
            good.replace("PeterNeumann x08", "Peter+Neumann x08"),
        ),
    ];
    for (why, note) in cases {
        assert!(
            matches!(v.verify_note(&note), Err(EvidenceError::MalformedNote(_))),
            "{why}: {:?}",
            v.verify_note(&note)
        );
    }
    let many = format!("{PETER_TEXT}\n{}", PETER_SIG.repeat(101));
    assert!(matches!(
        v.verify_note(&many),
        Err(EvidenceError::MalformedNote(_))
    ));
}

#[test]
fn verifier_keys_reject_every_mangling() {
    // Same idea as Go's TestNewVerifier: any strict substring or any single
    // changed byte of a valid key must fail to parse.
    let b = PETER_VKEY.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if i == 0 && j == b.len() {
                continue;
            }
            let s = &PETER_VKEY[i..j];
            assert!(NoteVerifier::parse(s).is_err(), "substring {s:?} accepted");
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] += 1;
        let s = String::from_utf8(m).expect("ASCII stays ASCII");
        assert!(NoteVerifier::parse(&s).is_err(), "mangled {s:?} accepted");
    }
    // Wrong key length and unknown algorithm, each with a matching key id
    // (vectors from Go's note_test.go).
    for k in [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ] {
        assert!(
            matches!(NoteVerifier::parse(k), Err(EvidenceError::MalformedKey(_))),
            "{k}"
        );
    }
}

#[test]
fn key_names_and_seeds_are_validated() {
    for bad in ["", "a b", "a+b", "a\tb", "a\nb", "a\u{a0}b"] {
        assert!(
            matches!(
                NoteSigner::generate(bad),
                Err(EvidenceError::InvalidKeyName(_))
            ),
            "{bad:?}"
        );
        assert!(matches!(
            NoteSigner::from_seed(bad, &[7; 32]),
            Err(EvidenceError::InvalidKeyName(_))
        ));
    }
    assert!(matches!(
        NoteSigner::from_seed("log.example", &[7; 31]),
        Err(EvidenceError::MalformedKey(_))
    ));
    assert!(NoteSigner::from_signer_key(PETER_VKEY).is_err());
    // Right format, wrong key id.
    let wrong_id = PETER_SKEY.replace("c74f20a3", "c74f20a4");
    assert!(matches!(
        NoteSigner::from_signer_key(&wrong_id),
        Err(EvidenceError::MalformedKey(_))
    ));
}

#[test]
fn signing_refuses_text_that_would_not_verify() {
    let signer = NoteSigner::from_seed("log.example", &[7; 32]).expect("valid");
    assert!(matches!(
        signer.sign_note("no newline"),
        Err(EvidenceError::MalformedNote(_))
    ));
    assert!(matches!(
        signer.sign_note(""),
        Err(EvidenceError::MalformedNote(_))
    ));
    assert!(matches!(
        signer.sign_note("tab\there\n"),
        Err(EvidenceError::MalformedNote(_))
    ));
}

#[test]
fn signer_debug_output_hides_the_secret() {
    let signer = NoteSigner::from_seed("log.example", &[0xab; 32]).expect("valid");
    let shown = format!("{signer:?}");
    assert!(shown.contains("log.example"), "{shown}");
    assert!(!shown.contains("ab, ab") && !shown.contains("abab") && !shown.contains("171"));
}

#[test]
fn checkpoint_body_has_the_c2sp_layout() {
    let cp = Checkpoint {
        origin: "meshos.example/ledger".into(),
        size: 8,
        root: meshos_evidence::hash_from_hex(
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        )
        .expect("hex"),
    };
    assert_eq!(
        cp.body(),
        "meshos.example/ledger\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    );
    assert_eq!(Checkpoint::parse(&cp.body()), Ok(cp.clone()));
    // Extension lines are allowed and ignored.
    let with_ext = format!("{}ext one\nanother ext\n", cp.body());
    assert_eq!(Checkpoint::parse(&with_ext), Ok(cp));
}

#[test]
fn malformed_checkpoints_are_rejected_with_a_clear_error() {
    let root = "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=";
    let cases: Vec<(String, &str)> = vec![
        (format!("o\n8\n{root}"), "newline"),
        ("".into(), "newline"),
        ("\n".into(), "origin"),
        (format!("\n8\n{root}\n"), "origin"),
        ("o\n".into(), "size"),
        ("o\n8\n".into(), "root"),
        (format!("o\n\n{root}\n"), "decimal"),
        (format!("o\nabc\n{root}\n"), "decimal"),
        (format!("o\n-1\n{root}\n"), "decimal"),
        (format!("o\n+8\n{root}\n"), "decimal"),
        (format!("o\n 8\n{root}\n"), "decimal"),
        (format!("o\n08\n{root}\n"), "leading zeros"),
        (format!("o\n18446744073709551616\n{root}\n"), "64 bits"),
        ("o\n8\nnot base64!\n".into(), "base64"),
        ("o\n8\nXcnaeacGWamtVZy3Ad7Zoqudgjqt\n".into(), "32"),
        (format!("o\n8\n{root}\n\n"), "extension line"),
        (format!("o\n8\n{root}\next\n\n"), "extension line"),
    ];
    for (body, why) in cases {
        match Checkpoint::parse(&body) {
            Err(EvidenceError::MalformedCheckpoint(msg)) => {
                assert!(
                    msg.contains(why),
                    "{body:?}: {msg:?} should mention {why:?}"
                )
            }
            other => panic!("{body:?} gave {other:?}"),
        }
    }
    // Size 0 and u64::MAX are fine.
    assert_eq!(
        Checkpoint::parse(&format!("o\n0\n{root}\n")).map(|c| c.size),
        Ok(0)
    );
    assert_eq!(
        Checkpoint::parse(&format!("o\n18446744073709551615\n{root}\n")).map(|c| c.size),
        Ok(u64::MAX)
    );
}

#[test]
fn signed_checkpoint_round_trip_and_proof_against_it() {
    let signer = NoteSigner::generate("meshos.example/ledger").expect("valid name");
    let leaves: Vec<_> = (0..21u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    let cp = Checkpoint {
        origin: signer.name().to_owned(),
        size: leaves.len() as u64,
        root: tree_root(&leaves),
    };
    let note = signer.sign_checkpoint(&cp).expect("signs");
    assert!(note.starts_with(&cp.body()));

    // An auditor holding only the verifier key string and the JSON bundle.
    let v = NoteVerifier::parse(&signer.verifier_key()).expect("parses");
    let verified = v.verify_checkpoint(&note).expect("verifies");
    assert_eq!(verified, cp);
    let bundle = meshos_evidence::InclusionProof::build(&leaves, 13).expect("in range");
    assert_eq!(bundle.tree_size, verified.size);
    bundle
        .verify(&verified.root)
        .expect("record is in the signed tree");
    assert_eq!(bundle.leaf_hash, hash_to_hex(&leaves[13]));

    let forged = note.replacen("\n21\n", "\n22\n", 1);
    assert_eq!(
        v.verify_checkpoint(&forged),
        Err(EvidenceError::BadSignature)
    );

    // A signed note that is not a checkpoint is still rejected.
    let not_cp = signer.sign_note("just text\n").expect("signs");
    assert!(matches!(
        v.verify_checkpoint(&not_cp),
        Err(EvidenceError::MalformedCheckpoint(_))
    ));
}

#[test]
fn checkpoints_with_unusable_origins_are_not_signed() {
    let signer = NoteSigner::from_seed("log.example", &[1; 32]).expect("valid");
    for origin in ["", "two\nlines", "nul\0"] {
        let cp = Checkpoint {
            origin: origin.into(),
            size: 1,
            root: leaf_hash(b""),
        };
        assert!(
            matches!(
                signer.sign_checkpoint(&cp),
                Err(EvidenceError::MalformedCheckpoint(_))
            ),
            "{origin:?}"
        );
    }
}
