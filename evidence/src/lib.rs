//! The mathematics of the Mesh OS tamper-evident log.
//!
//! Owns:
//! - RFC 6962 / RFC 9162 Merkle tree hashing (leaf prefix `0x00`, node prefix
//!   `0x01`), tree roots, inclusion proofs and consistency proofs, with the
//!   RFC 9162 verification algorithms;
//! - C2SP `tlog-checkpoint` bodies and C2SP `signed-note` signatures with
//!   Ed25519, byte-compatible with Go's `golang.org/x/mod/sumdb/note`, so that
//!   standard transparency-log tooling can verify what this log publishes;
//! - C2SP `tlog-cosignature` v1 (Ed25519): a witness's timestamped cosignature of a
//!   checkpoint, one more signature line on its note, and the `tlog-witness`
//!   `add-checkpoint` request with the checks a witness makes before it cosigns;
//! - a JSON-friendly inclusion proof bundle;
//! - `MerkleTree`, cached subtree roots for prefix roots and consistency proofs in
//!   O(log n), and `LogList`, the signed list of a deployment's logs.
//!
//! Must not: store anything, do I/O, read clocks or spawn tasks. Callers pass
//! leaf hashes in and persist what comes out; where keys live is their call.
//! Personal data never belongs in a leaf in the clear: hash it with a key
//! first, so that erasing the key erases the data without breaking proofs.

mod checkpoint;
mod cosignature;
mod error;
mod log_list;
mod merkle;
mod note;
mod proof;
mod tree;
mod witness;

pub use checkpoint::Checkpoint;
pub use cosignature::{Cosignature, CosignatureSigner, CosignatureVerifier};
pub use error::EvidenceError;
pub use log_list::{LogList, LogListEntry};
pub use merkle::{
    Frontier, Hash, consistency_proof, empty_root, inclusion_proof, leaf_hash, node_hash,
    tree_root, verify_consistency, verify_inclusion,
};
pub use note::{NoteSigner, NoteVerifier, add_signatures, note_text};
pub use proof::{InclusionProof, hash_from_hex, hash_to_hex};
pub use tree::MerkleTree;
pub use witness::{AddCheckpoint, MAX_PROOF_LINES, WitnessError, parse_size_body};
