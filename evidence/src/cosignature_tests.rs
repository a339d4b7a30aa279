use super::*;
use crate::note::{NoteSigner, NoteVerifier, add_signatures};

/// A known answer computed independently of this crate, with OpenSSL's Ed25519 (Python
/// `cryptography`): seed 00 01 … 1f, name `witness.example/w1`, the C2SP spec's example
/// checkpoint, cosigned at the spec's example time.
const KAT_SEED: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];
const KAT_NAME: &str = "witness.example/w1";
const KAT_VKEY: &str = "witness.example/w1+e75f6532+BAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4";
const KAT_SKEY: &str =
    "PRIVATE+KEY+witness.example/w1+e75f6532+BAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";
const KAT_BODY: &str =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
const KAT_TIME: u64 = 1679315147;
const KAT_LINE: &str = "— witness.example/w1 519lMgAAAABkGFDLBuRDazBLVac2NE+Y+IjbjQOcXLfF9CSDZVUIoS83rE1nFZsVE8YiWV6Ngr7lV8H6bdoBQGP/l73euDMQ9k+bBQ==\n";

/// A real witness's cosigner key, from transparency-dev/formats' tests (`note_cosigv1_test.go`):
/// its key id was derived with type 0x04 by another implementation.
const REMORA_VKEY: &str = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";
/// A cosignature blob from the same tests (`TestCoSigV1Timestamp`): key hash 646846b9, time
/// 1727964367.
const FORMATS_BLOB: &str = "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==";

fn log_signer() -> NoteSigner {
    NoteSigner::from_seed("example.com/behind-the-sofa", &[7; 32]).expect("log key")
}

fn kat_signer() -> CosignatureSigner {
    CosignatureSigner::from_seed(KAT_NAME, &KAT_SEED).expect("witness key")
}

#[test]
fn cosigning_reproduces_the_independent_known_answer() {
    let signer = kat_signer();
    assert_eq!(signer.verifier_key(), KAT_VKEY);
    assert_eq!(signer.signer_key(), KAT_SKEY);
    assert_eq!(signer.key_id(), 0xe75f6532);
    assert_eq!(
        signer.cosign(KAT_BODY, KAT_TIME).expect("cosigns"),
        KAT_LINE
    );
    // Bytes 4..12 (the timestamp) encode as in the spec's own example line at that time,
    // `— witness.example.com/w1 jWbPPwAAAABkGFDL…`.
    let b64 = KAT_LINE.trim_end().rsplit_once(' ').expect("line").1;
    assert_eq!(&b64[6..16], "AAAABkGFDL");

    let parsed = CosignatureSigner::from_signer_key(KAT_SKEY).expect("parses");
    assert_eq!(parsed.verifier_key(), KAT_VKEY);

    let v = CosignatureVerifier::parse(KAT_VKEY).expect("parses");
    assert_eq!(v.verifier_key(), KAT_VKEY);
    assert_eq!(v.key_label(), "witness.example/w1+e75f6532");
    let note = log_signer().sign_note(KAT_BODY).expect("log signs");
    let cosigned = add_signatures(&note, KAT_LINE).expect("attaches");
    assert_eq!(
        v.verify(&cosigned),
        Ok(Cosignature {
            time: KAT_TIME,
            line: KAT_LINE.trim_end().to_owned()
        })
    );
    // The log's own signature still verifies on the cosigned note.
    assert_eq!(log_signer().verifier().verify_note(&cosigned), Ok(KAT_BODY));
}

#[test]
fn another_implementations_keys_and_blobs_read_the_same() {
    let v = CosignatureVerifier::parse(REMORA_VKEY).expect("a 0x04 key from transparency-dev");
    assert_eq!(v.name(), "remora.n621.de");
    assert_eq!(v.key_id(), 0xda77ade7);
    assert_eq!(v.verifier_key(), REMORA_VKEY);
    let wrong_id = REMORA_VKEY.replace("da77ade7", "da77ade8");
    assert!(matches!(
        CosignatureVerifier::parse(&wrong_id),
        Err(EvidenceError::MalformedKey(_))
    ));

    let blob = B64.decode(FORMATS_BLOB).expect("base64");
    assert_eq!(&blob[..4], &0x646846b9u32.to_be_bytes());
    let (time, _) = split_timestamped(&blob[4..]).expect("timestamp || signature");
    assert_eq!(time, 1727964367);
}

#[test]
fn key_types_are_not_interchangeable() {
    // A log's note key (0x01) is not a cosigner key, and a cosigner key is not a log key.
    let log = log_signer();
    assert!(matches!(
        CosignatureVerifier::parse(&log.verifier_key()),
        Err(EvidenceError::MalformedKey(_))
    ));
    assert!(matches!(
        NoteVerifier::parse(KAT_VKEY),
        Err(EvidenceError::MalformedKey(_))
    ));
    // Go's note.GenerateKey writes 0x01 signer keys; they cosign under the 0x04 key id.
    let go_key = NoteSigner::from_seed(KAT_NAME, &KAT_SEED).expect("key");
    let go_style = go_key.signer_key();
    let from_go = CosignatureSigner::from_signer_key(&go_style).expect("0x01 signer key");
    assert_eq!(from_go.verifier_key(), KAT_VKEY);
    let bad_id = go_style.replace(&format!("+{:08x}+", go_key.key_id()), "+00000000+");
    assert_ne!(bad_id, go_style);
    assert!(CosignatureSigner::from_signer_key(&bad_id).is_err());
}

#[test]
fn a_note_with_several_signatures_yields_the_witnesses_line() {
    let log = log_signer();
    let note = log.sign_note(KAT_BODY).expect("signs");
    let w1 = kat_signer();
    let w2 = CosignatureSigner::from_seed("witness.example/w2", &[9; 32]).expect("key");
    let lines = format!(
        "{}{}",
        w2.cosign(KAT_BODY, 100).expect("w2"),
        w1.cosign(KAT_BODY, 200).expect("w1")
    );
    let cosigned = add_signatures(&note, &lines).expect("attaches");
    assert_eq!(w1.verifier().verify(&cosigned).expect("w1").time, 200);
    assert_eq!(w2.verifier().verify(&cosigned).expect("w2").time, 100);
    // A witness not on the note is missing, by name and key id.
    let w3 = CosignatureSigner::from_seed("witness.example/w3", &[3; 32]).expect("key");
    assert_eq!(
        w3.verifier().verify(&cosigned),
        Err(EvidenceError::UnknownKey(w3.verifier().key_label()))
    );
    // Attaching the same lines again adds nothing.
    assert_eq!(add_signatures(&cosigned, &lines).expect("again"), cosigned);
    // Two cosignatures by one witness: both are checked, the newest is returned.
    let later =
        add_signatures(&cosigned, &w1.cosign(KAT_BODY, 300).expect("w1 again")).expect("attaches");
    assert_eq!(w1.verifier().verify(&later).expect("w1").time, 300);
}

#[test]
fn a_cosignature_binds_the_checkpoint_the_time_and_the_key() {
    let log = log_signer();
    let w = kat_signer();
    let v = w.verifier();
    let note = log.sign_note(KAT_BODY).expect("signs");
    let line = w.cosign(KAT_BODY, KAT_TIME).expect("cosigns");

    // The same line on another checkpoint of the log.
    let other_body = KAT_BODY.replace("20852163", "20852164");
    let other = add_signatures(&log.sign_note(&other_body).expect("signs"), &line).expect("adds");
    assert_eq!(v.verify(&other), Err(EvidenceError::BadSignature));

    // Another time written over the signed one.
    let mut blob = B64
        .decode(line.trim_end().rsplit_once(' ').expect("line").1)
        .expect("base64");
    blob[11] ^= 1;
    let moved = format!("— {KAT_NAME} {}\n", B64.encode(&blob));
    let cosigned = add_signatures(&note, &moved).expect("adds");
    assert_eq!(v.verify(&cosigned), Err(EvidenceError::BadSignature));

    // A good line and a forged one by the same key: the forged one fails the note.
    let both = add_signatures(&add_signatures(&note, &line).expect("adds"), &moved).expect("adds");
    assert_eq!(v.verify(&both), Err(EvidenceError::BadSignature));

    // Another key under the witness's name has another key id: ignored, hence missing.
    let impostor = CosignatureSigner::from_seed(KAT_NAME, &[1; 32]).expect("key");
    let forged =
        add_signatures(&note, &impostor.cosign(KAT_BODY, KAT_TIME).expect("signs")).expect("adds");
    assert_eq!(
        v.verify(&forged),
        Err(EvidenceError::UnknownKey(v.key_label()))
    );

    // The log's own (0x01) signature made with the witness's key is not a cosignature.
    let same_key = NoteSigner::from_seed(KAT_NAME, &KAT_SEED).expect("key");
    let plain = same_key.sign_note(KAT_BODY).expect("signs");
    assert_eq!(
        v.verify(&plain),
        Err(EvidenceError::UnknownKey(v.key_label()))
    );
}

#[test]
fn malformed_cosignatures_and_inputs_are_typed_errors() {
    let w = kat_signer();
    let v = w.verifier();
    let note = log_signer().sign_note(KAT_BODY).expect("signs");
    let id = w.key_id().to_be_bytes();
    for (why, blob) in [
        ("no timestamp", [&id[..], &[0; 4]].concat()),
        ("short signature", [&id[..], &[0; 8], &[0; 63]].concat()),
        ("long signature", [&id[..], &[0; 8], &[0; 65]].concat()),
        (
            "timestamp beyond 2^63-1",
            [&id[..], &u64::MAX.to_be_bytes(), &[0; 64]].concat(),
        ),
    ] {
        let line = format!("— {KAT_NAME} {}\n", B64.encode(&blob));
        let cosigned = add_signatures(&note, &line).expect("well-formed line");
        assert!(
            matches!(v.verify(&cosigned), Err(EvidenceError::MalformedNote(_))),
            "{why}: {:?}",
            v.verify(&cosigned)
        );
    }
    // Only checkpoints are cosigned.
    assert!(matches!(
        w.cosign("not a checkpoint\n", 1),
        Err(EvidenceError::MalformedCheckpoint(_))
    ));
    assert!(w.cosign(KAT_BODY, u64::MAX).is_err());
    assert!(matches!(
        w.cosign("a\r\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", 1),
        Err(EvidenceError::MalformedNote(_))
    ));
    // Lines to attach must be signature lines.
    for bad in [
        "",
        "— w AAAA",
        "- w AAAAAAAA\n",
        "— w !!!\n",
        "— a+b AAAAAAAA\n",
    ] {
        assert!(
            matches!(
                add_signatures(&note, bad),
                Err(EvidenceError::MalformedNote(_))
            ),
            "{bad:?}"
        );
    }
    // No more than 100 signature lines in all.
    let many: String = (0..100u64)
        .map(|t| w.cosign(KAT_BODY, t).expect("cosigns"))
        .collect();
    assert!(matches!(
        add_signatures(&note, &many),
        Err(EvidenceError::MalformedNote(_))
    ));
    assert!(add_signatures(&note, &many[..many.len() / 2]).is_ok());
    // Keys.
    for bad in [
        "",
        "witness.example/w1",
        "witness.example/w1+e75f6532",
        "witness.example/w1+e75f6532+",
        "witness.example/w1+e75f6532+BAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG",
        "witness example+e75f6532+BAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4",
    ] {
        assert!(CosignatureVerifier::parse(bad).is_err(), "{bad:?}");
    }
    assert!(CosignatureSigner::generate("bad name").is_err());
    assert!(CosignatureSigner::from_signer_key(KAT_VKEY).is_err());
}

#[test]
fn generated_keys_round_trip_and_debug_hides_the_secret() {
    let w = CosignatureSigner::generate("witness.example/fresh").expect("generates");
    let again = CosignatureSigner::from_signer_key(&w.signer_key()).expect("parses");
    assert_eq!(again.verifier_key(), w.verifier_key());
    assert_eq!(
        CosignatureVerifier::parse(&w.verifier_key()).expect("parses"),
        w.verifier()
    );
    let debug = format!("{w:?}");
    let skey = w.signer_key();
    let secret = skey.rsplit_once('+').expect("key string").1;
    assert!(!debug.contains(secret), "{debug}");
}
