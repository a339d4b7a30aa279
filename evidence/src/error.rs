use thiserror::Error;

/// Everything that can go wrong while building or checking evidence.
///
/// Verification failures are errors rather than `false` so that callers can
/// tell an auditor *why* a proof or note was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EvidenceError {
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },

    #[error("tree size {old_size} is larger than tree size {new_size}; a log cannot shrink")]
    TreeSizeOrder { old_size: u64, new_size: u64 },

    #[error("proof does not verify: {0}")]
    ProofMismatch(String),

    #[error("invalid hash: {0}")]
    InvalidHash(String),

    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),

    #[error("malformed note: {0}")]
    MalformedNote(String),

    #[error("malformed key: {0}")]
    MalformedKey(String),

    #[error(
        "invalid key name {0:?}: must be non-empty and contain no whitespace, control characters or '+'"
    )]
    InvalidKeyName(String),

    #[error("note carries no signature by key {0}")]
    UnknownKey(String),

    #[error("signature by the trusted key does not verify over the note text")]
    BadSignature,
}
