//! C2SP `signed-note` with Ed25519 keys (<https://c2sp.org/signed-note>),
//! byte-compatible with Go's `golang.org/x/mod/sumdb/note`, so that standard
//! transparency-log tooling (witnesses, `sumdb`-style verifiers) can check
//! this log's checkpoints.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::checkpoint::{Checkpoint, check_origin};
use crate::error::EvidenceError;

/// Signature type byte for Ed25519 in key strings and key ids.
pub(crate) const ALG_ED25519: u8 = 0x01;
/// Every signature line starts with an em dash and a space.
pub(crate) const SIG_PREFIX: &str = "\u{2014} ";
/// Go's reference implementation refuses notes with more signatures than
/// this; doing the same bounds the work an attacker can make us do.
pub(crate) const MAX_SIGNATURES: usize = 100;
pub(crate) const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

pub(crate) fn check_key_name(name: &str) -> Result<(), EvidenceError> {
    // '+' separates the fields of a key string and whitespace separates the
    // fields of a signature line, so either would make keys ambiguous.
    let ok = !name.is_empty()
        && !name
            .chars()
            .any(|c| c == '+' || c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(EvidenceError::InvalidKeyName(name.to_owned()))
    }
}

/// `SHA-256(name || "\n" || alg || public key)[:4]`, big endian: the key id of a note
/// signature (`alg` 0x01) or a cosignature (`alg` 0x04).
pub(crate) fn compute_key_id(name: &str, alg: u8, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([alg]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// `base64(alg || key)`, the last field of a key string.
pub(crate) fn encode_key(alg: u8, key: &[u8; 32]) -> String {
    let mut bytes = Vec::with_capacity(33);
    bytes.push(alg);
    bytes.extend_from_slice(key);
    B64.encode(bytes)
}

/// The name, key id, type byte and 32-byte Ed25519 seed of a signer key string
/// `PRIVATE+KEY+<name>+<hex8>+<base64(type || seed)>` whose type is one of `algs`. The caller
/// checks the key id once it has derived the public key.
pub(crate) fn parse_signer_key<'a>(
    skey: &'a str,
    algs: &[u8],
) -> Result<(&'a str, u32, u8, [u8; 32]), EvidenceError> {
    let rest = skey.strip_prefix(PRIVATE_KEY_PREFIX).ok_or_else(|| {
        EvidenceError::MalformedKey("signer key does not start with PRIVATE+KEY+".into())
    })?;
    let (name, id, key) = split_key_string(rest)?;
    let (alg, seed) = match key.split_first() {
        Some((alg, seed)) if algs.contains(alg) => (*alg, seed),
        _ => return Err(unknown_algorithm(algs)),
    };
    let seed: [u8; 32] = seed.try_into().map_err(|_| {
        EvidenceError::MalformedKey(format!("Ed25519 seed is {} bytes, expected 32", seed.len()))
    })?;
    Ok((name, id, alg, seed))
}

/// The Ed25519 public key of a verifier key string `<name>+<hex8>+<base64(alg || key)>` of
/// type `alg`, checked against its key id.
pub(crate) fn parse_verifier_key(
    vkey: &str,
    alg: u8,
) -> Result<(&str, u32, VerifyingKey), EvidenceError> {
    let (name, id, key) = split_key_string(vkey)?;
    let public: [u8; 32] = match key.split_first() {
        Some((&a, public)) if a == alg => public.try_into().map_err(|_| {
            EvidenceError::MalformedKey(format!(
                "Ed25519 public key is {} bytes, expected 32",
                public.len()
            ))
        })?,
        _ => return Err(unknown_algorithm(&[alg])),
    };
    let expected = compute_key_id(name, alg, &public);
    if expected != id {
        return Err(EvidenceError::MalformedKey(format!(
            "key id {id:08x} does not match the name and key (expected {expected:08x})"
        )));
    }
    let key = VerifyingKey::from_bytes(&public)
        .map_err(|e| EvidenceError::MalformedKey(format!("not a valid Ed25519 public key: {e}")))?;
    Ok((name, id, key))
}

fn unknown_algorithm(algs: &[u8]) -> EvidenceError {
    let names: Vec<&str> = algs
        .iter()
        .map(|a| match *a {
            ALG_ED25519 => "0x01 (Ed25519 note signatures)",
            crate::cosignature::ALG_COSIGNATURE_V1 => "0x04 (Ed25519 cosignature/v1)",
            _ => "?",
        })
        .collect();
    EvidenceError::MalformedKey(format!(
        "unknown signature type; expected {}",
        names.join(" or ")
    ))
}

/// Signed notes must be text without ASCII control characters other than
/// newline (the same rule as Go's `note.Open`); checking it when signing too
/// means a note we sign is always one that we, and Go, can open.
pub(crate) fn check_note_chars(s: &str) -> Result<(), EvidenceError> {
    match s.char_indices().find(|&(_, c)| c < ' ' && c != '\n') {
        Some((at, c)) => Err(EvidenceError::MalformedNote(format!(
            "control character {c:?} at byte {at}"
        ))),
        None => Ok(()),
    }
}

/// Split `"<name>+<hex8 key id>+<base64 key>"`, checking the name and key id
/// syntax. The base64 part may itself contain '+', hence two single splits.
pub(crate) fn split_key_string(key: &str) -> Result<(&str, u32, Vec<u8>), EvidenceError> {
    let bad = |why: &str| EvidenceError::MalformedKey(why.to_owned());
    let (name, rest) = key
        .split_once('+')
        .ok_or_else(|| bad("expected <name>+<key id>+<key>"))?;
    let (id_hex, key_b64) = rest
        .split_once('+')
        .ok_or_else(|| bad("expected <name>+<key id>+<key>"))?;
    check_key_name(name)?;
    if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("key id is not 8 hex digits"));
    }
    let id = u32::from_str_radix(id_hex, 16).map_err(|_| bad("key id is not 8 hex digits"))?;
    let key_bytes = B64
        .decode(key_b64)
        .map_err(|_| bad("key material is not standard base64"))?;
    Ok((name, id, key_bytes))
}

/// An Ed25519 key that signs notes (and so checkpoints) under a key name.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    key_id: u32,
}

impl fmt::Debug for NoteSigner {
    // Never print the secret key, even in debug logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    fn from_key(name: &str, key: SigningKey) -> Result<NoteSigner, EvidenceError> {
        check_key_name(name)?;
        let key_id = compute_key_id(name, ALG_ED25519, key.verifying_key().as_bytes());
        Ok(NoteSigner {
            name: name.to_owned(),
            key,
            key_id,
        })
    }

    /// A fresh key from the operating system's CSPRNG.
    pub fn generate(name: &str) -> Result<NoteSigner, EvidenceError> {
        check_key_name(name)?;
        Self::from_key(name, SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Rebuild a signer from the 32-byte Ed25519 seed returned by
    /// [`NoteSigner::seed`].
    pub fn from_seed(name: &str, seed: &[u8]) -> Result<NoteSigner, EvidenceError> {
        let seed: &[u8; 32] = seed.try_into().map_err(|_| {
            EvidenceError::MalformedKey(format!(
                "Ed25519 seed is {} bytes, expected 32",
                seed.len()
            ))
        })?;
        Self::from_key(name, SigningKey::from_bytes(seed))
    }

    /// Parse a Go-style signer key, `"PRIVATE+KEY+<name>+<hex8>+<base64(0x01 || seed)>"`.
    pub fn from_signer_key(skey: &str) -> Result<NoteSigner, EvidenceError> {
        let (name, id, _, seed) = parse_signer_key(skey, &[ALG_ED25519])?;
        let signer = Self::from_seed(name, &seed)?;
        if signer.key_id != id {
            return Err(EvidenceError::MalformedKey(format!(
                "key id {id:08x} does not match the key (expected {:08x})",
                signer.key_id
            )));
        }
        Ok(signer)
    }

    /// The Go-style signer key string; secret, like [`NoteSigner::seed`].
    pub fn signer_key(&self) -> String {
        format!(
            "{PRIVATE_KEY_PREFIX}{}+{:08x}+{}",
            self.name,
            self.key_id,
            encode_key(ALG_ED25519, &self.key.to_bytes())
        )
    }

    /// The secret 32-byte seed, for the caller to persist.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// First four bytes, big endian, of `SHA-256(name || "\n" || 0x01 || public key)`.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The public verifier key string, `"<name>+<hex8 key id>+<base64(0x01 || public key)>"`.
    pub fn verifier_key(&self) -> String {
        self.verifier().verifier_key()
    }

    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// Sign `text` (which must end with a newline) and return the signed
    /// note: the text, a blank line, and one signature line.
    pub fn sign_note(&self, text: &str) -> Result<String, EvidenceError> {
        if !text.ends_with('\n') {
            return Err(EvidenceError::MalformedNote(
                "note text must end with a newline".into(),
            ));
        }
        check_note_chars(text)?;
        let sig = self.key.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(4 + 64);
        blob.extend_from_slice(&self.key_id.to_be_bytes());
        blob.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            B64.encode(blob)
        ))
    }

    /// Sign a checkpoint body as a note.
    pub fn sign_checkpoint(&self, cp: &Checkpoint) -> Result<String, EvidenceError> {
        check_origin(&cp.origin)?;
        self.sign_note(&cp.body())
    }
}

/// The public half of a [`NoteSigner`]: checks notes signed by one key.
#[derive(Clone, Debug)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parse a verifier key string as produced by
    /// [`NoteSigner::verifier_key`] (or Go's `note.GenerateKey`), checking
    /// that the key id matches the name and key.
    pub fn parse(vkey: &str) -> Result<NoteVerifier, EvidenceError> {
        let (name, key_id, key) = parse_verifier_key(vkey, ALG_ED25519)?;
        Ok(NoteVerifier {
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

    /// The verifier key string this verifier was parsed from.
    pub fn verifier_key(&self) -> String {
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            encode_key(ALG_ED25519, self.key.as_bytes())
        )
    }

    /// Open a signed note and return its text if it carries a valid signature
    /// by this key. Signatures by other keys are ignored, but every signature
    /// line must be well formed, and a signature that claims to be by this key
    /// and does not verify is an error even if another one does (Go checks
    /// only the first; checking all leaves no forged line unnoticed).
    pub fn verify_note<'a>(&self, note: &'a str) -> Result<&'a str, EvidenceError> {
        let parsed = SignedNote::parse(note)?;
        let mut verified = false;
        for sig in parsed.signatures_by(&self.name, self.key_id) {
            let sig =
                Signature::from_slice(sig.signature()).map_err(|_| EvidenceError::BadSignature)?;
            self.key
                .verify_strict(parsed.text.as_bytes(), &sig)
                .map_err(|_| EvidenceError::BadSignature)?;
            verified = true;
        }
        if verified {
            Ok(parsed.text)
        } else {
            Err(EvidenceError::UnknownKey(format!(
                "{}+{:08x}",
                self.name, self.key_id
            )))
        }
    }

    /// Open a signed checkpoint. The caller still has to check that the
    /// origin is the log it expects: the key name need not equal the origin.
    pub fn verify_checkpoint(&self, note: &str) -> Result<Checkpoint, EvidenceError> {
        Checkpoint::parse(self.verify_note(note)?)
    }
}

/// One signature line of a signed note: `— <name> base64(<key id> || <signature>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NoteSignature<'a> {
    pub name: &'a str,
    pub key_id: u32,
    /// The decoded base64, key id included.
    blob: Vec<u8>,
    /// The whole line, without its newline.
    pub line: &'a str,
}

impl NoteSignature<'_> {
    /// What follows the key id: an Ed25519 signature, or a timestamp and one.
    pub(crate) fn signature(&self) -> &[u8] {
        &self.blob[4..]
    }
}

/// A signed note split into its text and its signature lines, every line checked to be well
/// formed (the signatures themselves are not checked here).
#[derive(Debug, Clone)]
pub(crate) struct SignedNote<'a> {
    /// Everything up to and including the newline before the blank line.
    pub text: &'a str,
    pub signatures: Vec<NoteSignature<'a>>,
}

impl<'a> SignedNote<'a> {
    pub(crate) fn parse(note: &'a str) -> Result<SignedNote<'a>, EvidenceError> {
        let malformed = |why: String| EvidenceError::MalformedNote(why);
        check_note_chars(note)?;
        // The text may itself contain blank lines; the signature block is
        // whatever follows the last one.
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| malformed("no blank line separating text and signatures".into()))?;
        let text = &note[..split + 1];
        let block = &note[split + 2..];
        let Some(block) = block.strip_suffix('\n') else {
            return Err(malformed(if block.is_empty() {
                "no signature lines after the blank line".into()
            } else {
                "signature block does not end with a newline".into()
            }));
        };
        let mut signatures = Vec::new();
        for (n, line) in block.split('\n').enumerate() {
            if n >= MAX_SIGNATURES {
                return Err(malformed(format!(
                    "more than {MAX_SIGNATURES} signature lines"
                )));
            }
            let signature = parse_signature_line(line)
                .map_err(|why| malformed(format!("signature line {} {why}", n + 1)))?;
            signatures.push(signature);
        }
        Ok(SignedNote { text, signatures })
    }

    /// The lines that claim to be by the key `name`/`key_id` (every one must be checked: a
    /// note may carry several).
    pub(crate) fn signatures_by(
        &self,
        name: &str,
        key_id: u32,
    ) -> impl Iterator<Item = &NoteSignature<'a>> {
        self.signatures
            .iter()
            .filter(move |s| s.name == name && s.key_id == key_id)
    }
}

/// `— <name> <base64(key id || signature)>`, or why the line is malformed.
fn parse_signature_line(line: &str) -> Result<NoteSignature<'_>, &'static str> {
    let body = line
        .strip_prefix(SIG_PREFIX)
        .ok_or("does not start with an em dash and a space")?;
    let (name, sig_b64) = body
        .split_once(' ')
        .ok_or("is not \"<key name> <base64 signature>\"")?;
    check_key_name(name).map_err(|_| "has an invalid key name")?;
    let blob = B64.decode(sig_b64).map_err(|_| "is not standard base64")?;
    let Some(id_bytes) = blob.first_chunk::<4>() else {
        return Err("is too short to hold a key id");
    };
    if blob.len() == 4 {
        return Err("holds a key id but no signature");
    }
    Ok(NoteSignature {
        name,
        key_id: u32::from_be_bytes(*id_bytes),
        blob,
        line,
    })
}

/// The text of a signed note (everything before its signatures), with every signature line
/// checked to be well formed but no signature verified: for reading what a note claims before
/// deciding which key must have signed it.
pub fn note_text(note: &str) -> Result<&str, EvidenceError> {
    Ok(SignedNote::parse(note)?.text)
}

/// `note` with the signature lines in `lines` (each `— <name> <base64>`, newline-terminated)
/// added after its own, skipping lines it already carries. Every line must be well formed and
/// the result may hold at most 100 signatures (what [`NoteVerifier::verify_note`] opens). No
/// signature is verified: verify the result with the keys you trust.
pub fn add_signatures(note: &str, lines: &str) -> Result<String, EvidenceError> {
    let parsed = SignedNote::parse(note)?;
    let mut out = note.to_owned();
    let mut count = parsed.signatures.len();
    let existing: Vec<&str> = parsed.signatures.iter().map(|s| s.line).collect();
    let mut added: Vec<&str> = Vec::new();
    check_note_chars(lines)?;
    let Some(body) = lines.strip_suffix('\n') else {
        return Err(EvidenceError::MalformedNote(if lines.is_empty() {
            "no signature lines to add".into()
        } else {
            "signature lines do not end with a newline".into()
        }));
    };
    for (n, line) in body.split('\n').enumerate() {
        parse_signature_line(line).map_err(|why| {
            EvidenceError::MalformedNote(format!("added signature line {} {why}", n + 1))
        })?;
        if existing.contains(&line) || added.contains(&line) {
            continue;
        }
        count += 1;
        if count > MAX_SIGNATURES {
            return Err(EvidenceError::MalformedNote(format!(
                "more than {MAX_SIGNATURES} signature lines"
            )));
        }
        added.push(line);
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}
