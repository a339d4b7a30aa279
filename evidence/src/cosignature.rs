//! C2SP `tlog-cosignature` v1 with Ed25519 (<https://c2sp.org/tlog-cosignature>): a
//! witness's timestamped statement that a checkpoint is the largest consistent tree head it
//! has seen for the log, written as one more signature line of the checkpoint's signed note.
//!
//! - key id: `SHA-256(<name> || "\n" || 0x04 || public key)[:4]` (0x04, not the 0x01 of a
//!   note signature, so a cosignature can never pass for the log's own signature);
//! - signed message: `"cosignature/v1\ntime <unix seconds>\n"` followed by the whole
//!   checkpoint body (extension lines included, signatures not);
//! - line: `— <name> base64(key id (4) || timestamp (8, big endian) || Ed25519 signature (64))`.
//!
//! Keys are strings in the signed-note format with signature type 0x04:
//! `<name>+<hex8>+<base64(0x04 || public key)>`, and for the secret half
//! `PRIVATE+KEY+<name>+<hex8>+<base64(0x04 || seed)>`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::checkpoint::Checkpoint;
use crate::error::EvidenceError;
use crate::note::{
    ALG_ED25519, PRIVATE_KEY_PREFIX, SIG_PREFIX, SignedNote, check_key_name, check_note_chars,
    compute_key_id, encode_key, parse_signer_key, parse_verifier_key,
};

/// Signature type byte of Ed25519 `cosignature/v1` keys and key ids.
pub(crate) const ALG_COSIGNATURE_V1: u8 = 0x04;
/// The spec's bound on a timestamp: it must fit in an `i64`.
const MAX_TIMESTAMP: u64 = i64::MAX as u64;
/// Key id, timestamp, Ed25519 signature.
const COSIGNATURE_LEN: usize = 8 + 64;

/// The message a cosignature signs.
fn cosigned_message(time: u64, text: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{text}").into_bytes()
}

/// A witness's Ed25519 key that cosigns checkpoints under a key name (a schema-less URL
/// naming the witness, by the spec's recommendation).
#[derive(Clone)]
pub struct CosignatureSigner {
    name: String,
    key: SigningKey,
    key_id: u32,
}

impl fmt::Debug for CosignatureSigner {
    // Never print the secret key, even in debug logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosignatureSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl CosignatureSigner {
    fn from_key(name: &str, key: SigningKey) -> Result<CosignatureSigner, EvidenceError> {
        check_key_name(name)?;
        let key_id = compute_key_id(name, ALG_COSIGNATURE_V1, key.verifying_key().as_bytes());
        Ok(CosignatureSigner {
            name: name.to_owned(),
            key,
            key_id,
        })
    }

    /// A fresh key from the operating system's CSPRNG.
    pub fn generate(name: &str) -> Result<CosignatureSigner, EvidenceError> {
        check_key_name(name)?;
        Self::from_key(name, SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Rebuild a signer from its 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<CosignatureSigner, EvidenceError> {
        Self::from_key(name, SigningKey::from_bytes(seed))
    }

    /// Parse a signer key `PRIVATE+KEY+<name>+<hex8>+<base64(type || seed)>`. Type 0x04 is
    /// what [`CosignatureSigner::signer_key`] writes; an Ed25519 note key (type 0x01, as Go's
    /// `note.GenerateKey` makes) is accepted too and cosigns under the 0x04 key id, as Go's
    /// `NewSignerForCosignatureV1` does. The key id must match the key either way.
    pub fn from_signer_key(skey: &str) -> Result<CosignatureSigner, EvidenceError> {
        let (name, id, alg, seed) = parse_signer_key(skey, &[ALG_COSIGNATURE_V1, ALG_ED25519])?;
        let key = SigningKey::from_bytes(&seed);
        let expected = compute_key_id(name, alg, key.verifying_key().as_bytes());
        if expected != id {
            return Err(EvidenceError::MalformedKey(format!(
                "key id {id:08x} does not match the key (expected {expected:08x})"
            )));
        }
        Self::from_key(name, key)
    }

    /// The signer key string (type 0x04); secret.
    pub fn signer_key(&self) -> String {
        format!(
            "{PRIVATE_KEY_PREFIX}{}+{:08x}+{}",
            self.name,
            self.key_id,
            encode_key(ALG_COSIGNATURE_V1, &self.key.to_bytes())
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// First four bytes, big endian, of `SHA-256(name || "\n" || 0x04 || public key)`.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// The public verifier key string, `<name>+<hex8>+<base64(0x04 || public key)>`.
    pub fn verifier_key(&self) -> String {
        self.verifier().verifier_key()
    }

    /// The cosignature line (`— <name> <base64>\n`) over a checkpoint body — the text of its
    /// signed note, extension lines included — at `time` (unix seconds). The body must parse
    /// as a checkpoint: a cosignature is a statement about a log's tree head, nothing else.
    pub fn cosign(&self, checkpoint_body: &str, time: u64) -> Result<String, EvidenceError> {
        check_note_chars(checkpoint_body)?;
        Checkpoint::parse(checkpoint_body)?;
        if time > MAX_TIMESTAMP {
            return Err(EvidenceError::MalformedNote(format!(
                "cosignature timestamp {time} is beyond 2^63 - 1"
            )));
        }
        let sig = self.key.sign(&cosigned_message(time, checkpoint_body));
        let mut blob = Vec::with_capacity(4 + COSIGNATURE_LEN);
        blob.extend_from_slice(&self.key_id.to_be_bytes());
        blob.extend_from_slice(&time.to_be_bytes());
        blob.extend_from_slice(&sig.to_bytes());
        Ok(format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob)))
    }
}

/// A verified cosignature: when the witness made it, and its signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// The witness's timestamp, unix seconds.
    pub time: u64,
    /// The signature line, without its newline.
    pub line: String,
}

/// The public half of a [`CosignatureSigner`]: checks a witness's cosignatures on notes.
#[derive(Clone, Debug)]
pub struct CosignatureVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl PartialEq for CosignatureVerifier {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.key_id == other.key_id && self.key == other.key
    }
}

impl Eq for CosignatureVerifier {}

impl CosignatureVerifier {
    /// Parse a cosigner verifier key `<name>+<hex8>+<base64(0x04 || public key)>`, checking
    /// that the key id matches. A note verifier key (type 0x01) is refused: it names a log's
    /// key, and a cosignature's key id is derived with 0x04.
    pub fn parse(vkey: &str) -> Result<CosignatureVerifier, EvidenceError> {
        let (name, key_id, key) = parse_verifier_key(vkey, ALG_COSIGNATURE_V1)?;
        Ok(CosignatureVerifier {
            name: name.to_owned(),
            key_id,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// `<name>+<hex8>`: what a signature line names, short enough for tables and labels.
    pub fn key_label(&self) -> String {
        format!("{}+{:08x}", self.name, self.key_id)
    }

    /// The verifier key string this verifier was parsed from.
    pub fn verifier_key(&self) -> String {
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            encode_key(ALG_COSIGNATURE_V1, self.key.as_bytes())
        )
    }

    /// Finds this witness's cosignature among the signature lines of a signed note (the log's
    /// own and other witnesses' are ignored) and checks it over the note's text. Every line
    /// with this witness's name and key id must verify; the newest is returned. The note's
    /// text must be a checkpoint. The log's signature is not checked here: open the note with
    /// the log's [`crate::NoteVerifier`] as well.
    pub fn verify(&self, note: &str) -> Result<Cosignature, EvidenceError> {
        let parsed = SignedNote::parse(note)?;
        Checkpoint::parse(parsed.text)?;
        let mut newest: Option<Cosignature> = None;
        for sig in parsed.signatures_by(&self.name, self.key_id) {
            let (time, signature) = split_timestamped(sig.signature())?;
            self.key
                .verify_strict(&cosigned_message(time, parsed.text), &signature)
                .map_err(|_| EvidenceError::BadSignature)?;
            if newest.as_ref().is_none_or(|n| n.time < time) {
                newest = Some(Cosignature {
                    time,
                    line: sig.line.to_owned(),
                });
            }
        }
        newest.ok_or_else(|| EvidenceError::UnknownKey(self.key_label()))
    }
}

/// `timestamp (8, big endian) || Ed25519 signature (64)`, the part of a cosignature line
/// after the key id.
fn split_timestamped(bytes: &[u8]) -> Result<(u64, Signature), EvidenceError> {
    let malformed = |why: String| EvidenceError::MalformedNote(why);
    let Some((time, sig)) = bytes.split_first_chunk::<8>() else {
        return Err(malformed("cosignature is too short for a timestamp".into()));
    };
    if sig.len() != 64 {
        return Err(malformed(format!(
            "cosignature holds {} signature bytes, expected 64 (Ed25519)",
            sig.len()
        )));
    }
    let time = u64::from_be_bytes(*time);
    if time > MAX_TIMESTAMP {
        return Err(malformed(format!(
            "cosignature timestamp {time} is beyond 2^63 - 1"
        )));
    }
    let sig = Signature::from_slice(sig).map_err(|_| EvidenceError::BadSignature)?;
    Ok((time, sig))
}

#[cfg(test)]
#[path = "cosignature_tests.rs"]
mod tests;
