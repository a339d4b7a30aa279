//! The C2SP `tlog-witness` protocol (<https://c2sp.org/tlog-witness>), without its transport:
//! the `add-checkpoint` request body both sides read and write, and the checks a witness
//! makes, in the spec's order, before it may cosign.
//!
//! The request body is `old <size>\n`, zero to 63 base64 consistency-proof hashes one per
//! line, an empty line, then the signed checkpoint note. The witness verifies the log's
//! signature with a key it trusts for the origin (403 otherwise), that `old` is at most the
//! new size (400), that `old` is the size it last cosigned for the origin (409, with that
//! size), that equal sizes have equal roots (409), and the RFC 6962 consistency proof from its
//! last root to the new one (422). Only then may it store the checkpoint and cosign it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::checkpoint::Checkpoint;
use crate::merkle::{Hash, verify_consistency};
use crate::note::{NoteVerifier, note_text};

/// The spec's limit on consistency-proof lines (a proof between two trees of at most 2^64
/// leaves needs fewer).
pub const MAX_PROOF_LINES: usize = 63;

/// A parsed `add-checkpoint` request. Parsing checks the form of every part (the note's
/// signature lines included) but verifies nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the client believes the witness last cosigned.
    pub old_size: u64,
    /// RFC 6962 consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, as sent.
    pub note: String,
}

/// Why a witness refuses an `add-checkpoint` request; [`WitnessError::status`] is the HTTP
/// status the spec gives each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    #[error("no signature on the checkpoint verifies with a key trusted for {origin:?}: {why}")]
    Untrusted { origin: String, why: String },
    #[error("old size {old} is larger than the checkpoint's size {size}")]
    OldAfterNew { old: u64, size: u64 },
    #[error("old size {old} is not the size this witness last cosigned for the log ({latest})")]
    StaleOld { old: u64, latest: u64 },
    #[error("the checkpoint has the size this witness last cosigned ({size}) but another root")]
    RootMismatch { size: u64 },
    /// The proof's own words say what did not match (`proof does not verify: …`).
    #[error("{0}")]
    BadProof(String),
}

impl WitnessError {
    /// 400, 403, 404, 409 or 422, as `tlog-witness` prescribes.
    pub fn status(&self) -> u16 {
        match self {
            WitnessError::Malformed(_) | WitnessError::OldAfterNew { .. } => 400,
            WitnessError::Untrusted { .. } => 403,
            WitnessError::UnknownOrigin(_) => 404,
            WitnessError::StaleOld { .. } | WitnessError::RootMismatch { .. } => 409,
            WitnessError::BadProof(_) => 422,
        }
    }

    /// For a 409, the size the witness holds: the body of its `text/x.tlog.size` answer.
    pub fn latest_size(&self) -> Option<u64> {
        match self {
            WitnessError::StaleOld { latest, .. } => Some(*latest),
            WitnessError::RootMismatch { size } => Some(*size),
            _ => None,
        }
    }
}

fn parse_size(text: &str) -> Option<u64> {
    // ASCII decimal without leading zeroes, `0` for zero.
    let ok = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if ok { text.parse().ok() } else { None }
}

/// Reads a witness's `409 Conflict` body (`text/x.tlog.size`): its latest size and a newline.
pub fn parse_size_body(body: &str) -> Option<u64> {
    parse_size(body.strip_suffix('\n')?)
}

impl AddCheckpoint {
    /// Parses a request body. Errors are [`WitnessError::Malformed`] (400).
    pub fn parse(body: &str) -> Result<AddCheckpoint, WitnessError> {
        let malformed = |why: String| WitnessError::Malformed(why);
        let (old_line, mut rest) = body
            .split_once('\n')
            .ok_or_else(|| malformed("no old size line".into()))?;
        let old_size = old_line
            .strip_prefix("old ")
            .and_then(parse_size)
            .ok_or_else(|| {
                malformed(
                    "the first line is not \"old <size>\" (decimal, no leading zeroes)".into(),
                )
            })?;
        let mut proof = Vec::new();
        loop {
            let Some((line, after)) = rest.split_once('\n') else {
                return Err(malformed(
                    "no empty line between the consistency proof and the checkpoint".into(),
                ));
            };
            rest = after;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(malformed(format!(
                    "more than {MAX_PROOF_LINES} consistency proof lines"
                )));
            }
            let bytes = B64.decode(line).map_err(|_| {
                malformed(format!(
                    "consistency proof line {} is not standard base64",
                    proof.len() + 1
                ))
            })?;
            let hash: Hash = bytes.as_slice().try_into().map_err(|_| {
                malformed(format!(
                    "consistency proof line {} is {} bytes, expected 32",
                    proof.len() + 1,
                    bytes.len()
                ))
            })?;
            proof.push(hash);
        }
        let note = rest.to_owned();
        checkpoint_of(&note)?;
        Ok(AddCheckpoint {
            old_size,
            proof,
            note,
        })
    }

    /// The request body.
    pub fn body(&self) -> String {
        let mut out = format!("old {}\n", self.old_size);
        for hash in &self.proof {
            out.push_str(&B64.encode(hash));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.note);
        out
    }

    /// The checkpoint the note claims, unverified: its origin says which keys must have
    /// signed it.
    pub fn claimed(&self) -> Result<Checkpoint, WitnessError> {
        checkpoint_of(&self.note)
    }

    /// The witness's checks, in the spec's order, given the keys it trusts for the claimed
    /// origin and the checkpoint it last cosigned for that origin (`None`: never). Returns
    /// the verified checkpoint, which the witness must store (atomically with this check)
    /// before it answers with a cosignature of the note's text.
    pub fn check(
        &self,
        trusted: &[NoteVerifier],
        latest: Option<&Checkpoint>,
    ) -> Result<Checkpoint, WitnessError> {
        let claimed = self.claimed()?;
        let mut why = String::from("no trusted key is configured for this origin");
        let mut verified = None;
        for key in trusted {
            match key.verify_checkpoint(&self.note) {
                Ok(cp) => {
                    verified = Some(cp);
                    break;
                }
                Err(e) => why = format!("{}: {e}", key.verifier_key()),
            }
        }
        let Some(cp) = verified else {
            return Err(WitnessError::Untrusted {
                origin: claimed.origin,
                why,
            });
        };
        if self.old_size > cp.size {
            return Err(WitnessError::OldAfterNew {
                old: self.old_size,
                size: cp.size,
            });
        }
        let latest_size = latest.map_or(0, |l| l.size);
        if self.old_size != latest_size {
            return Err(WitnessError::StaleOld {
                old: self.old_size,
                latest: latest_size,
            });
        }
        match latest {
            Some(l) if l.size == cp.size && l.root != cp.root => {
                Err(WitnessError::RootMismatch { size: cp.size })
            }
            Some(l) => verify_consistency(l.size, cp.size, &l.root, &cp.root, &self.proof)
                .map_err(|e| WitnessError::BadProof(e.to_string())),
            // Nothing cosigned yet: the old size is 0, whose proof must be empty.
            None => verify_consistency(0, cp.size, &cp.root, &cp.root, &self.proof)
                .map_err(|e| WitnessError::BadProof(e.to_string())),
        }?;
        Ok(cp)
    }
}

fn checkpoint_of(note: &str) -> Result<Checkpoint, WitnessError> {
    let text = note_text(note)
        .map_err(|e| WitnessError::Malformed(format!("the checkpoint note: {e}")))?;
    Checkpoint::parse(text).map_err(|e| WitnessError::Malformed(e.to_string()))
}

#[cfg(test)]
#[path = "witness_tests.rs"]
mod tests;
