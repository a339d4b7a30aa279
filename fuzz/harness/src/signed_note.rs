//! Signed notes (C2SP signed-note), checkpoints and tenant log lists: the parsers `meshos audit
//! verify` and `evidence_fetch` run over what the database holds, and the verifier keys an
//! auditor passes in.
//!
//! Each input is read three ways: as a note from outside (it must not verify: no key here
//! signed it), as the text of a checkpoint or log list (a parsed one must write back to text
//! that parses to the same value), and as text our signer signs, with any lines after its last
//! blank line appended as further signature lines (what we sign we open, to the same text, and
//! a note whose text changed after signing never opens).

use std::sync::OnceLock;

use meshos_evidence::{Checkpoint, LogList, NoteSigner, NoteVerifier};

fn signer() -> &'static NoteSigner {
    static SIGNER: OnceLock<NoteSigner> = OnceLock::new();
    SIGNER.get_or_init(|| {
        NoteSigner::from_seed("meshos.fuzz/log", &[7; 32]).expect("a valid key name and seed")
    })
}

pub fn note(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let signer = signer();
    let verifier = signer.verifier();

    if let Ok(opened) = verifier.verify_note(text) {
        // Ed25519 signatures are deterministic: a note opens only if it holds the very line
        // our key writes for its text.
        let ours = signer
            .sign_note(opened)
            .expect("an opened text can be signed");
        let our_line = ours[opened.len() + 1..].trim_end_matches('\n');
        assert!(
            text[opened.len() + 1..].lines().any(|l| l == our_line),
            "a note verified without our signature over its text"
        );
    }
    let _ = verifier.verify_checkpoint(text);
    let _ = NoteVerifier::parse(text);
    let _ = NoteVerifier::parse(text.trim_end());

    if let Ok(checkpoint) = Checkpoint::parse(text) {
        assert_eq!(
            Checkpoint::parse(&checkpoint.body()).ok().as_ref(),
            Some(&checkpoint),
            "a checkpoint does not survive its own body"
        );
    }
    if let Ok(list) = LogList::parse(text) {
        let body = list.body().expect("a parsed log list has a body");
        assert_eq!(
            LogList::parse(&body).ok().as_ref(),
            Some(&list),
            "a log list does not survive its own body"
        );
    }

    // Our signature on the text before the last blank line, other signature lines after it.
    let (body, extra) = match text.rfind("\n\n") {
        Some(at) => (&text[..at + 1], &text[at + 2..]),
        None => (text, ""),
    };
    let Ok(signed) = signer.sign_note(body) else {
        return;
    };
    assert_eq!(
        verifier.verify_note(&signed).ok(),
        Some(body),
        "a note we signed does not open to its text"
    );
    assert_eq!(
        verifier.verify_checkpoint(&signed).ok(),
        Checkpoint::parse(body).ok(),
        "a signed checkpoint opens differently from its body"
    );
    let with_extra = format!("{signed}{extra}");
    if let Ok(opened) = verifier.verify_note(&with_extra) {
        assert_eq!(
            opened, body,
            "extra signature lines changed the signed text"
        );
    }
    // The same signature under a text changed by one byte never verifies.
    let mut tampered = signed.clone().into_bytes();
    if let Some(first) = tampered.first_mut() {
        *first = if *first == b'x' { b'y' } else { b'x' };
        if let Ok(tampered) = String::from_utf8(tampered) {
            assert!(
                verifier.verify_note(&tampered).is_err(),
                "a note verified after its text changed"
            );
        }
    }
}
