"""Self-check of the suite's own RFC 9162 verifier, so a failing proof test points at the server."""

import hashlib

from meshos_e2e import inclusion_path, leaf_hash, merkle_root, root_from_inclusion_proof


def test_rfc9162_verifier_against_reference_tree():
    for n in range(1, 40):
        leaves = [leaf_hash(f"leaf {i}".encode()) for i in range(n)]
        root = merkle_root(leaves)
        for i in range(n):
            assert root_from_inclusion_proof(leaves[i], i, n, inclusion_path(leaves, i)) == root, (n, i)


def test_rfc6962_known_values():
    # Empty tree and single-leaf values from RFC 6962 / CT test vectors.
    assert merkle_root([]).hex() == hashlib.sha256(b"").hexdigest()
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
