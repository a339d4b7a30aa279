//! Merkle tree known answers and exhaustive proof checks.
//!
//! Known-answer vectors are the RFC 6962 test tree published by
//! transparency-dev/merkle (`testonly/constants.go`, `proof/verify_test.go`),
//! also used by certificate-transparency-go and Trillian. A root nobody else
//! computes proves nothing to anybody else, so these are the tests that matter.

use meshos_evidence::{
    EvidenceError, Hash, InclusionProof, consistency_proof, empty_root, hash_from_hex, hash_to_hex,
    inclusion_proof, leaf_hash, node_hash, tree_root, verify_consistency, verify_inclusion,
};

fn h(s: &str) -> Hash {
    hash_from_hex(s).expect("test vector is valid hex")
}

fn reference_leaves() -> Vec<Hash> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|d| leaf_hash(&hex::decode(d).expect("test vector is valid hex")))
    .collect()
}

/// Roots of the reference tree for sizes 0..=8.
const REFERENCE_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn leaves(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("record {i}").as_bytes()))
        .collect()
}

// --- a literal transcription of the RFC 6962 section 2.1 recursive
// definitions, to cross-check the iterative implementation ----------------

fn k_for(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn ref_mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = k_for(n);
            node_hash(&ref_mth(&d[..k]), &ref_mth(&d[k..]))
        }
    }
}

fn ref_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        return vec![];
    }
    let k = k_for(n);
    if m < k {
        let mut p = ref_path(m, &d[..k]);
        p.push(ref_mth(&d[k..]));
        p
    } else {
        let mut p = ref_path(m - k, &d[k..]);
        p.push(ref_mth(&d[..k]));
        p
    }
}

fn ref_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![ref_mth(d)] };
    }
    let k = k_for(n);
    if m <= k {
        let mut p = ref_subproof(m, &d[..k], b);
        p.push(ref_mth(&d[k..]));
        p
    } else {
        let mut p = ref_subproof(m - k, &d[k..], false);
        p.push(ref_mth(&d[..k]));
        p
    }
}

#[test]
fn hashes_use_rfc6962_domain_separation() {
    assert_eq!(hash_to_hex(&empty_root()), REFERENCE_ROOTS[0]);
    let l = reference_leaves();
    // Level 0 and level 1 node hashes from testonly/constants.go.
    assert_eq!(hash_to_hex(&l[0]), REFERENCE_ROOTS[1]);
    assert_eq!(
        hash_to_hex(&l[1]),
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
    );
    assert_eq!(
        hash_to_hex(&l[7]),
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"
    );
    assert_eq!(hash_to_hex(&node_hash(&l[0], &l[1])), REFERENCE_ROOTS[2]);
    assert_eq!(
        hash_to_hex(&node_hash(&l[6], &l[7])),
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
    );
}

#[test]
fn roots_match_the_published_rfc6962_vectors() {
    let l = reference_leaves();
    for (size, want) in REFERENCE_ROOTS.iter().enumerate() {
        assert_eq!(hash_to_hex(&tree_root(&l[..size])), *want, "size {size}");
    }
}

#[test]
fn inclusion_proofs_match_the_published_vectors() {
    let l = reference_leaves();
    // (index, size, audit path) with zero-based indices.
    let vectors: [(u64, usize, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, want) in vectors {
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        let got = inclusion_proof(&l[..size], index).expect("index in range");
        assert_eq!(got, want, "inclusion proof for leaf {index} of {size}");
        let root = h(REFERENCE_ROOTS[size]);
        verify_inclusion(&l[index as usize], index, size as u64, &want, &root)
            .expect("published proof verifies");
    }
}

#[test]
fn consistency_proofs_match_the_published_vectors() {
    let l = reference_leaves();
    let vectors: [(u64, usize, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (old, new, want) in vectors {
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        let got = consistency_proof(&l[..new], old).expect("sizes in order");
        assert_eq!(got, want, "consistency proof {old} -> {new}");
        let old_root = h(REFERENCE_ROOTS[old as usize]);
        let new_root = h(REFERENCE_ROOTS[new]);
        verify_consistency(old, new as u64, &old_root, &new_root, &want)
            .expect("published proof verifies");
    }
}

#[test]
fn a_frontier_grown_in_steps_gives_the_root_of_every_prefix() {
    let all = leaves(300);
    let mut frontier = meshos_evidence::Frontier::new();
    assert_eq!(frontier.root(), ref_mth(&[]));
    for (n, leaf) in all.iter().enumerate() {
        frontier.push(*leaf);
        assert_eq!(frontier.size(), n as u64 + 1);
        assert_eq!(frontier.root(), ref_mth(&all[..=n]), "size {}", n + 1);
    }
}

#[test]
fn iterative_code_agrees_with_the_recursive_rfc_definitions() {
    let all = leaves(48);
    for n in 0..=all.len() {
        let d = &all[..n];
        assert_eq!(tree_root(d), ref_mth(d), "root of {n}");
        for m in 0..n {
            assert_eq!(
                inclusion_proof(d, m as u64).expect("in range"),
                ref_path(m, d),
                "path {m} of {n}"
            );
        }
        for m in 1..=n {
            assert_eq!(
                consistency_proof(d, m as u64).expect("in order"),
                ref_subproof(m, d, true),
                "consistency {m} -> {n}"
            );
        }
    }
}

fn flip(h: &Hash, bit: u8) -> Hash {
    let mut out = *h;
    out[0] ^= bit;
    out
}

#[test]
fn every_inclusion_proof_verifies_and_any_tampering_fails() {
    let all = leaves(40);
    let other = leaf_hash(b"not in the log");
    for n in 1..=all.len() {
        let d = &all[..n];
        let size = n as u64;
        let root = tree_root(d);
        for i in 0..n {
            let index = i as u64;
            let proof = inclusion_proof(d, index).expect("in range");
            verify_inclusion(&d[i], index, size, &proof, &root)
                .unwrap_or_else(|e| panic!("leaf {i} of {n}: {e}"));

            let rejects = |leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash| {
                verify_inclusion(leaf, index, size, proof, root).is_err()
            };
            for j in 0..n as u64 {
                if j != index {
                    assert!(
                        rejects(&d[i], j, size, &proof, &root),
                        "index {j} for {i} of {n}"
                    );
                }
            }
            assert!(
                rejects(&d[i], index, size * 2, &proof, &root),
                "size*2 ({i} of {n})"
            );
            if index < size / 2 {
                assert!(
                    rejects(&d[i], index, size / 2, &proof, &root),
                    "size/2 ({i} of {n})"
                );
            }
            assert!(
                rejects(&other, index, size, &proof, &root),
                "wrong leaf ({i} of {n})"
            );
            assert!(
                rejects(&d[i], index, size, &proof, &empty_root()),
                "empty root"
            );
            assert!(
                rejects(&d[i], index, size, &proof, &flip(&root, 1)),
                "other root"
            );
            for k in 0..proof.len() {
                let mut bad = proof.clone();
                bad[k] = flip(&bad[k], 8);
                assert!(
                    rejects(&d[i], index, size, &bad, &root),
                    "proof[{k}] ({i} of {n})"
                );
            }
            let mut longer = proof.clone();
            longer.push(root);
            assert!(rejects(&d[i], index, size, &longer, &root), "trailing root");
            let mut prefixed = vec![[0u8; 32]];
            prefixed.extend_from_slice(&proof);
            assert!(
                rejects(&d[i], index, size, &prefixed, &root),
                "preceding garbage"
            );
            if !proof.is_empty() {
                let shorter = &proof[..proof.len() - 1];
                assert!(rejects(&d[i], index, size, shorter, &root), "truncated");
            }
        }
    }
}

#[test]
fn every_consistency_proof_verifies_and_any_tampering_fails() {
    let all = leaves(40);
    let roots: Vec<Hash> = (0..=all.len()).map(|n| tree_root(&all[..n])).collect();
    for new in 1..=all.len() {
        for old in 0..=new {
            let (o, n) = (old as u64, new as u64);
            let (r1, r2) = (roots[old], roots[new]);
            let proof = consistency_proof(&all[..new], o).expect("in order");
            verify_consistency(o, n, &r1, &r2, &proof)
                .unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
            if old == 0 || old == new {
                assert!(proof.is_empty());
                continue;
            }

            let rejects = |o: u64, n: u64, r1: &Hash, r2: &Hash, p: &[Hash]| {
                verify_consistency(o, n, r1, r2, p).is_err()
            };
            assert!(
                rejects(o - 1, n, &r1, &r2, &proof),
                "old-1 ({old} -> {new})"
            );
            assert!(
                rejects(o + 1, n, &r1, &r2, &proof),
                "old+1 ({old} -> {new})"
            );
            if o ^ 2 != o && o ^ 2 <= n {
                assert!(
                    rejects(o ^ 2, n, &r1, &r2, &proof),
                    "old^2 ({old} -> {new})"
                );
            }
            assert!(
                rejects(o, n * 2, &r1, &r2, &proof),
                "new*2 ({old} -> {new})"
            );
            assert!(
                rejects(o, n / 2, &r1, &r2, &proof),
                "new/2 ({old} -> {new})"
            );
            assert!(rejects(o, n, &flip(&r1, 1), &r2, &proof), "wrong old root");
            assert!(rejects(o, n, &r1, &flip(&r2, 1), &proof), "wrong new root");
            assert!(rejects(o, n, &r2, &r1, &proof), "swapped roots");
            assert!(rejects(o, n, &r1, &r2, &[]), "empty proof");
            for k in 0..proof.len() {
                let mut bad = proof.clone();
                bad[k] = flip(&bad[k], 16);
                assert!(rejects(o, n, &r1, &r2, &bad), "proof[{k}] ({old} -> {new})");
            }
            for extra in [[0u8; 32], r1, r2] {
                let mut longer = proof.clone();
                longer.push(extra);
                assert!(
                    rejects(o, n, &r1, &r2, &longer),
                    "trailing hash ({old} -> {new})"
                );
                let mut prefixed = vec![extra];
                prefixed.extend_from_slice(&proof);
                assert!(
                    rejects(o, n, &r1, &r2, &prefixed),
                    "preceding hash ({old} -> {new})"
                );
            }
            let shorter = &proof[..proof.len() - 1];
            assert!(
                rejects(o, n, &r1, &r2, shorter),
                "truncated ({old} -> {new})"
            );
        }
    }
}

#[test]
fn a_log_that_rewrote_history_fails_consistency() {
    let honest = leaves(13);
    let mut forked = honest.clone();
    forked[4] = leaf_hash(b"rewritten");
    let old_root = tree_root(&honest[..7]);
    let proof = consistency_proof(&forked, 7).expect("in order");
    let err = verify_consistency(7, 13, &old_root, &tree_root(&forked), &proof)
        .expect_err("a rewritten prefix must not verify");
    assert!(matches!(err, EvidenceError::ProofMismatch(_)), "{err}");
}

#[test]
fn edge_cases_are_errors_not_panics() {
    let d = leaves(5);
    assert_eq!(
        inclusion_proof(&d, 5),
        Err(EvidenceError::IndexOutOfRange { index: 5, size: 5 })
    );
    assert_eq!(
        inclusion_proof(&[], 0),
        Err(EvidenceError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        inclusion_proof(&d, u64::MAX),
        Err(EvidenceError::IndexOutOfRange {
            index: u64::MAX,
            size: 5
        })
    );
    assert_eq!(
        consistency_proof(&d, 6),
        Err(EvidenceError::TreeSizeOrder {
            old_size: 6,
            new_size: 5
        })
    );
    let root = tree_root(&d);
    assert!(matches!(
        verify_inclusion(&d[0], 0, 0, &[], &root),
        Err(EvidenceError::IndexOutOfRange { .. })
    ));
    assert!(verify_inclusion(&d[0], u64::MAX, u64::MAX, &[root; 70], &root).is_err());
    assert!(matches!(
        verify_consistency(6, 5, &root, &root, &[]),
        Err(EvidenceError::TreeSizeOrder { .. })
    ));
    // Same size: only the same root, with an empty proof.
    verify_consistency(5, 5, &root, &root, &[]).expect("identical trees");
    assert!(verify_consistency(5, 5, &root, &empty_root(), &[]).is_err());
    assert!(verify_consistency(5, 5, &root, &root, &[root]).is_err());
    // From the empty tree: always consistent, but the proof must be empty.
    verify_consistency(0, 5, &empty_root(), &root, &[]).expect("empty is a prefix");
    assert!(verify_consistency(0, 5, &empty_root(), &root, &[root]).is_err());
    assert!(verify_consistency(1, u64::MAX, &d[0], &root, &[root; 70]).is_err());
    // Single leaf tree: the root is the leaf hash and the proof is empty.
    verify_inclusion(&d[0], 0, 1, &[], &d[0]).expect("one leaf");
    assert!(verify_inclusion(&d[0], 0, 1, &[], &d[1]).is_err());
}

fn check_big_tree(n: usize, indices: &[u64], old: u64) {
    let all: Vec<Hash> = (0..n as u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let root = tree_root(&all);
    for &index in indices {
        let proof = inclusion_proof(&all, index).expect("in range");
        verify_inclusion(&all[index as usize], index, n as u64, &proof, &root)
            .expect("big tree inclusion");
    }
    let proof = consistency_proof(&all, old).expect("in order");
    verify_consistency(
        old,
        n as u64,
        &tree_root(&all[..old as usize]),
        &root,
        &proof,
    )
    .expect("big tree consistency");
}

#[test]
fn larger_trees_verify() {
    // Sized for debug builds, where SHA-256 is slow; the million-leaf run
    // below is the one that shows the algorithms are iterative and linear.
    let n = (1usize << 14) + 3;
    check_big_tree(n, &[0, 1, 8_191, 8_192, n as u64 - 1], 10_001);
}

#[test]
#[ignore = "a million leaves is slow in debug builds; run with --release -- --ignored"]
fn a_million_leaves() {
    let n = 1_000_003usize;
    check_big_tree(n, &[0, 524_287, 524_288, n as u64 - 1], 700_001);
}

#[test]
fn inclusion_proof_bundle_round_trips_through_json() {
    let d = leaves(11);
    let root = tree_root(&d);
    let bundle = InclusionProof::build(&d, 6).expect("in range");
    assert_eq!(bundle.leaf_hash, hash_to_hex(&d[6]));
    bundle.verify(&root).expect("bundle verifies");

    let json = serde_json::to_string(&bundle).expect("serialises");
    let back: InclusionProof = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, bundle);
    back.verify(&root).expect("round-tripped bundle verifies");

    let mut bad = bundle.clone();
    bad.leaf_index = 7;
    assert!(bad.verify(&root).is_err());
    let mut bad = bundle.clone();
    bad.audit_path[0] = "zz".repeat(32);
    assert!(matches!(
        bad.verify(&root),
        Err(EvidenceError::InvalidHash(_))
    ));
    let mut bad = bundle.clone();
    bad.leaf_hash.pop();
    assert!(matches!(
        bad.verify(&root),
        Err(EvidenceError::InvalidHash(_))
    ));

    let schema = schemars::schema_for!(InclusionProof);
    let schema = serde_json::to_value(&schema).expect("schema serialises");
    assert!(schema["properties"]["audit_path"].is_object(), "{schema}");
}

#[test]
fn hex_helpers_round_trip_and_reject_bad_input() {
    let x = leaf_hash(b"x");
    assert_eq!(hash_from_hex(&hash_to_hex(&x)), Ok(x));
    assert_eq!(hash_from_hex(&hash_to_hex(&x).to_uppercase()), Ok(x));
    for bad in ["", "00", &"0".repeat(63), &"0".repeat(66), &"g".repeat(64)] {
        assert!(
            matches!(hash_from_hex(bad), Err(EvidenceError::InvalidHash(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn a_frontier_proves_consistency_from_its_size_with_only_the_appended_leaves() {
    use meshos_evidence::Frontier;
    let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    for old in 0..=70usize {
        let mut frontier = Frontier::new();
        for leaf in &leaves[..old] {
            frontier.push(*leaf);
        }
        for new in old..=70usize {
            let proof = frontier
                .consistency_proof(&leaves[old..new])
                .expect("a proof");
            assert_eq!(
                proof,
                consistency_proof(&leaves[..new], old as u64).expect("a proof"),
                "{old}->{new}"
            );
        }
    }
    // The reference tree's published proofs come out of it too.
    let reference = reference_leaves();
    let mut frontier = Frontier::new();
    for leaf in &reference[..3] {
        frontier.push(*leaf);
    }
    let proof = frontier.consistency_proof(&reference[3..8]).expect("proof");
    verify_consistency(3, 8, &h(REFERENCE_ROOTS[3]), &h(REFERENCE_ROOTS[8]), &proof)
        .expect("verifies against the reference roots");
}
