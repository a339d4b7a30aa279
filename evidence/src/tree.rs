//! A log's leaves with every aligned perfect subtree root kept, so that the root of any prefix
//! and the consistency proof between any two prefixes cost O(log n) and O(log² n) hashes
//! instead of the O(n) of the slice functions in `merkle.rs`. An auditor checking thousands of
//! checkpoints of one log builds it once.

use crate::error::EvidenceError;
use crate::merkle::{Hash, empty_root, node_hash, split_point};

/// `levels[h][k]` is the root of leaves `k·2^h .. (k+1)·2^h`; `levels[0]` are the leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    pub fn new() -> MerkleTree {
        MerkleTree::default()
    }

    pub fn from_leaves(leaves: impl IntoIterator<Item = Hash>) -> MerkleTree {
        let mut tree = MerkleTree::new();
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends a leaf, completing every perfect subtree it closes.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        let mut height = 0;
        loop {
            if self.levels.len() == height {
                self.levels.push(Vec::new());
            }
            let level = &mut self.levels[height];
            level.push(node);
            let n = level.len();
            if n % 2 == 1 {
                break;
            }
            node = node_hash(&level[n - 2], &level[n - 1]);
            height += 1;
        }
    }

    /// The Merkle Tree Hash of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, EvidenceError> {
        let n = self.checked(size, size)?;
        if n == 0 {
            return Ok(empty_root());
        }
        Ok(self.range_root(0, n))
    }

    /// The RFC 6962 consistency proof from the first `old_size` leaves to the first
    /// `new_size`; the same hashes as [`crate::consistency_proof`] over `leaves[..new_size]`.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, EvidenceError> {
        if old_size > new_size {
            return Err(EvidenceError::TreeSizeOrder { old_size, new_size });
        }
        let new = self.checked(new_size, new_size)?;
        let mut m = self.checked(old_size, new_size)?;
        if m == 0 || m == new {
            return Ok(Vec::new());
        }
        // The recursion of `merkle::consistency_proof` over (start, len) instead of a slice.
        let (mut start, mut len) = (0usize, new);
        let mut old_root_known = true;
        let mut proof = Vec::new();
        loop {
            if m == len {
                if !old_root_known {
                    proof.push(self.range_root(start, start + len));
                }
                break;
            }
            let k = split_point(len);
            if m <= k {
                proof.push(self.range_root(start + k, start + len));
                len = k;
            } else {
                proof.push(self.range_root(start, start + k));
                m -= k;
                start += k;
                len -= k;
                old_root_known = false;
            }
        }
        proof.reverse();
        Ok(proof)
    }

    fn checked(&self, value: u64, size: u64) -> Result<usize, EvidenceError> {
        if value > self.size() {
            return Err(EvidenceError::IndexOutOfRange {
                index: value,
                size: self.size(),
            });
        }
        usize::try_from(value).map_err(|_| EvidenceError::IndexOutOfRange { index: value, size })
    }

    /// The root of leaves `start..end`, a node of an RFC 6962 tree: either a perfect subtree
    /// aligned to its size (kept in `levels`) or a left perfect subtree and the rest, with
    /// `start` a multiple of the left part's size — which RFC 6962's split rule guarantees for
    /// every node it produces. Callers pass `start < end <= size`.
    fn range_root(&self, start: usize, end: usize) -> Hash {
        let len = end - start;
        if len.is_power_of_two() && start.is_multiple_of(len) {
            let height = len.trailing_zeros() as usize;
            return self.levels[height][start >> height];
        }
        let k = split_point(len);
        node_hash(
            &self.range_root(start, start + k),
            &self.range_root(start + k, end),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{consistency_proof, leaf_hash, tree_root, verify_consistency};

    #[test]
    fn roots_and_proofs_match_the_slice_functions() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let tree = MerkleTree::from_leaves(leaves.iter().copied());
        assert_eq!(tree.size(), 70);
        for new in 0..=70u64 {
            let prefix = &leaves[..new as usize];
            assert_eq!(tree.root(new).unwrap(), tree_root(prefix), "root of {new}");
            for old in 0..=new {
                let proof = tree.consistency_proof(old, new).unwrap();
                assert_eq!(
                    proof,
                    consistency_proof(prefix, old).unwrap(),
                    "{old}->{new}"
                );
                let (r_old, r_new) = (tree.root(old).unwrap(), tree.root(new).unwrap());
                verify_consistency(old, new, &r_old, &r_new, &proof).unwrap();
            }
        }
    }

    #[test]
    fn sizes_beyond_the_leaves_are_errors() {
        let tree = MerkleTree::from_leaves([leaf_hash(b"a"), leaf_hash(b"b")]);
        assert!(tree.root(3).is_err());
        assert!(tree.consistency_proof(1, 3).is_err());
        assert!(matches!(
            tree.consistency_proof(2, 1),
            Err(EvidenceError::TreeSizeOrder { .. })
        ));
    }
}
