//! RFC 6962 / RFC 9162 Merkle tree hashing and proofs over an in-memory slice
//! of leaf hashes.
//!
//! Proof generation takes the full list of leaf hashes because this crate owns
//! no storage; a caller with millions of leaves should keep them (or a cache of
//! subtree roots) in its own store. Everything here is iterative, so the cost
//! is O(n) hashing and O(log n) extra memory whatever the tree size.

use sha2::{Digest, Sha256};

use crate::error::EvidenceError;
use crate::proof::hash_to_hex;

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

// Domain separation prefixes from RFC 6962 section 2.1: without them a leaf
// could be passed off as an interior node (second-preimage attack).
const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// `SHA-256(0x00 || data)`: the hash of one log entry.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (RFC 6962's `k`).
/// Only meaningful for `n >= 2`, which every caller guarantees.
pub(crate) fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    1usize << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The right edge of an RFC 6962 tree: the roots of its perfect subtrees (heights strictly
/// decreasing), enough to append leaves and compute the root without the earlier leaves. A
/// log that keeps one can sign a checkpoint for its new size by hashing only the new leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    stack: Vec<(Hash, u32)>,
    size: u64,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash, merging equal-height subtrees as RFC 6962's split rule implies.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        let mut height = 0u32;
        while let Some(&(left, h)) = self.stack.last() {
            if h != height {
                break;
            }
            self.stack.pop();
            node = node_hash(&left, &node);
            height += 1;
        }
        self.stack.push((node, height));
        self.size += 1;
    }

    /// The Merkle Tree Hash of the leaves appended so far: the perfect subtrees folded right
    /// to left.
    pub fn root(&self) -> Hash {
        let mut perfect = self.stack.iter().rev();
        let Some(&(mut root, _)) = perfect.next() else {
            return empty_root();
        };
        for (left, _) in perfect {
            root = node_hash(left, &root);
        }
        root
    }
}

impl Frontier {
    /// The RFC 6962 consistency proof from this frontier's tree to that tree with `appended`
    /// leaves added: the same hashes as [`consistency_proof`] over all the leaves, from only
    /// the old tree's perfect subtrees (which every node of the proof inside the old tree is)
    /// and the new leaves. A log that keeps the frontier of the size a witness last cosigned
    /// proves its next checkpoint to it by reading only the leaves appended since.
    pub fn consistency_proof(&self, appended: &[Hash]) -> Result<Vec<Hash>, EvidenceError> {
        let old = self.size;
        if old == 0 || appended.is_empty() {
            return Ok(Vec::new());
        }
        // (start, len, root) of each perfect subtree of the old tree, left to right.
        let mut perfect = Vec::with_capacity(self.stack.len());
        let mut start = 0u64;
        for (root, height) in &self.stack {
            let len = 1u64 << height;
            perfect.push((start, len, *root));
            start += len;
        }
        let old_node = |start: u64, len: u64| {
            perfect
                .iter()
                .find(|(s, l, _)| *s == start && *l == len)
                .map(|(_, _, root)| *root)
                .ok_or_else(|| {
                    EvidenceError::ProofMismatch(format!(
                        "no perfect subtree {start}..{} in a frontier of size {old}",
                        start + len
                    ))
                })
        };
        // Leaves `start..end` of the new tree, all appended ones.
        let new_node = |start: u64, end: u64| {
            let from = usize::try_from(start - old).unwrap_or(usize::MAX);
            let to = usize::try_from(end - old).unwrap_or(usize::MAX);
            appended
                .get(from..to)
                .map(tree_root)
                .ok_or(EvidenceError::IndexOutOfRange {
                    index: end,
                    size: old + appended.len() as u64,
                })
        };
        // The loop of `consistency_proof` over (start, len) of the new tree.
        let (mut start, mut len, mut m) = (0u64, old + appended.len() as u64, old);
        let mut old_root_known = true;
        let mut proof = Vec::new();
        loop {
            if m == len {
                if !old_root_known {
                    proof.push(old_node(start, len)?);
                }
                break;
            }
            let k = 1u64 << (63 - (len - 1).leading_zeros());
            if m <= k {
                proof.push(new_node(start + k, start + len)?);
                len = k;
            } else {
                proof.push(old_node(start, k)?);
                m -= k;
                start += k;
                len -= k;
                old_root_known = false;
            }
        }
        proof.reverse();
        Ok(proof)
    }
}

/// RFC 6962 Merkle Tree Hash over already-hashed leaves.
pub fn tree_root(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.push(*leaf);
    }
    frontier.root()
}

fn to_index(value: u64, size: u64) -> Result<usize, EvidenceError> {
    usize::try_from(value).map_err(|_| EvidenceError::IndexOutOfRange { index: value, size })
}

/// The RFC 6962 audit path (RFC 9162 "inclusion proof") for leaf `index` in
/// the tree made of all of `leaves`, ordered from the leaf's sibling upwards.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, EvidenceError> {
    let size = leaves.len() as u64;
    if index >= size {
        return Err(EvidenceError::IndexOutOfRange { index, size });
    }
    let mut idx = to_index(index, size)?;
    let mut sub = leaves;
    // Walking down from the root yields siblings top-first; the wire order is
    // bottom-first, hence the reverse at the end.
    let mut path = Vec::new();
    while sub.len() > 1 {
        let (left, right) = sub.split_at(split_point(sub.len()));
        if idx < left.len() {
            path.push(tree_root(right));
            sub = left;
        } else {
            path.push(tree_root(left));
            idx -= left.len();
            sub = right;
        }
    }
    path.reverse();
    Ok(path)
}

/// Verify an inclusion proof with the algorithm of RFC 9162 section 2.1.3.2.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), EvidenceError> {
    if index >= size {
        return Err(EvidenceError::IndexOutOfRange { index, size });
    }
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(EvidenceError::ProofMismatch(format!(
                "inclusion proof has more than the expected hashes for leaf {index} in a tree of size {size}"
            )));
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            // Skip the levels where this node is the last, unpaired one: the
            // proof carries no sibling for them.
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(EvidenceError::ProofMismatch(format!(
            "inclusion proof has too few hashes ({}) for leaf {index} in a tree of size {size}",
            proof.len()
        )));
    }
    if r != *root {
        return Err(EvidenceError::ProofMismatch(format!(
            "inclusion proof for leaf {index} leads to root {}, expected {}",
            hash_to_hex(&r),
            hash_to_hex(root)
        )));
    }
    Ok(())
}

/// The RFC 6962 consistency proof that the tree made of `leaves[..old_size]`
/// is a prefix of the tree made of all of `leaves`.
///
/// Empty when `old_size` is 0 or equal to `leaves.len()`: there is nothing to
/// prove in those cases.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, EvidenceError> {
    let new_size = leaves.len() as u64;
    if old_size > new_size {
        return Err(EvidenceError::TreeSizeOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    let mut m = to_index(old_size, new_size)?;
    let mut sub = leaves;
    // RFC 6962's SUBPROOF flag: while the old tree is still a whole left
    // subtree the verifier already knows its root (the old root), so it is
    // left out of the proof.
    let mut old_root_known = true;
    let mut proof = Vec::new();
    loop {
        if m == sub.len() {
            if !old_root_known {
                proof.push(tree_root(sub));
            }
            break;
        }
        let (left, right) = sub.split_at(split_point(sub.len()));
        if m <= left.len() {
            proof.push(tree_root(right));
            sub = left;
        } else {
            proof.push(tree_root(left));
            m -= left.len();
            sub = right;
            old_root_known = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Verify a consistency proof with the algorithm of RFC 9162 section 2.1.4.2.
///
/// The empty tree is a prefix of every tree, so `old_size == 0` verifies with
/// an empty proof whatever `old_root` is. Equal sizes need equal roots and an
/// empty proof.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), EvidenceError> {
    if old_size > new_size {
        return Err(EvidenceError::TreeSizeOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(EvidenceError::ProofMismatch(format!(
                "consistency proof from size {old_size} to {new_size} must be empty, it has {} hashes",
                proof.len()
            )));
        }
        if old_size == new_size && old_root != new_root {
            return Err(EvidenceError::ProofMismatch(format!(
                "two different roots for the same tree size {old_size}: {} and {}",
                hash_to_hex(old_root),
                hash_to_hex(new_root)
            )));
        }
        return Ok(());
    }
    let Some((head, tail)) = proof.split_first() else {
        return Err(EvidenceError::ProofMismatch(format!(
            "consistency proof from size {old_size} to {new_size} is empty"
        )));
    };
    // A power-of-two old tree is a whole subtree of the new one, so the proof
    // omits its root and the verifier starts from the old root itself.
    let (start, rest) = if old_size.is_power_of_two() {
        (*old_root, proof)
    } else {
        (*head, tail)
    };
    let mut f_n = old_size - 1;
    let mut s_n = new_size - 1;
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let mut fr = start;
    let mut sr = start;
    for c in rest {
        if s_n == 0 {
            return Err(EvidenceError::ProofMismatch(format!(
                "consistency proof from size {old_size} to {new_size} has too many hashes"
            )));
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(EvidenceError::ProofMismatch(format!(
            "consistency proof from size {old_size} to {new_size} has too few hashes ({})",
            proof.len()
        )));
    }
    if fr != *old_root {
        return Err(EvidenceError::ProofMismatch(format!(
            "consistency proof leads to old root {}, expected {}",
            hash_to_hex(&fr),
            hash_to_hex(old_root)
        )));
    }
    if sr != *new_root {
        return Err(EvidenceError::ProofMismatch(format!(
            "consistency proof leads to new root {}, expected {}",
            hash_to_hex(&sr),
            hash_to_hex(new_root)
        )));
    }
    Ok(())
}
