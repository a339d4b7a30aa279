//! Serialisable proof bundles and the hex encoding used for hashes in JSON.

use serde::{Deserialize, Serialize};

use crate::error::EvidenceError;
use crate::merkle::{Hash, inclusion_proof, verify_inclusion};

/// Lower-case hex, the usual text form of a hash in tooling and JSON.
pub fn hash_to_hex(h: &Hash) -> String {
    hex::encode(h)
}

/// Parse a 64-digit hex hash (either case).
pub fn hash_from_hex(s: &str) -> Result<Hash, EvidenceError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|e| EvidenceError::InvalidHash(format!("{s:?} is not 64 hex digits: {e}")))?;
    Ok(out)
}

/// An inclusion proof in a form that survives JSON: everything an auditor
/// needs, together with a signed checkpoint for the root, to check that one
/// record is in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InclusionProof {
    /// Zero-based position of the record in the log.
    pub leaf_index: u64,
    /// Size of the tree the audit path leads to the root of.
    pub tree_size: u64,
    /// RFC 6962 leaf hash of the record, hex.
    pub leaf_hash: String,
    /// RFC 6962 audit path, from the leaf's sibling upwards, hex.
    pub audit_path: Vec<String>,
}

impl InclusionProof {
    /// Build the bundle for leaf `index` of the tree made of all of `leaves`.
    pub fn build(leaves: &[Hash], index: u64) -> Result<InclusionProof, EvidenceError> {
        let path = inclusion_proof(leaves, index)?;
        // inclusion_proof has already rejected an out-of-range index.
        let leaf = usize::try_from(index)
            .ok()
            .and_then(|i| leaves.get(i))
            .ok_or(EvidenceError::IndexOutOfRange {
                index,
                size: leaves.len() as u64,
            })?;
        Ok(InclusionProof {
            leaf_index: index,
            tree_size: leaves.len() as u64,
            leaf_hash: hash_to_hex(leaf),
            audit_path: path.iter().map(hash_to_hex).collect(),
        })
    }

    /// Check the bundle against a tree root (normally taken from a verified
    /// checkpoint of size `tree_size`).
    pub fn verify(&self, root: &Hash) -> Result<(), EvidenceError> {
        let leaf = hash_from_hex(&self.leaf_hash)?;
        let path = self
            .audit_path
            .iter()
            .map(|h| hash_from_hex(h))
            .collect::<Result<Vec<_>, _>>()?;
        verify_inclusion(&leaf, self.leaf_index, self.tree_size, &path, root)
    }
}
