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


def test_signed_note_verifier_roundtrip():
    import base64

    import pytest
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from meshos_e2e import verify_note_signature

    sk = Ed25519PrivateKey.generate()
    pub = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    name = "example.com/log"
    key_hash = hashlib.sha256(name.encode() + b"\n" + b"\x01" + pub).digest()[:4]
    key_b64 = base64.b64encode(b"\x01" + pub).decode()
    vkey = f"{name}+{key_hash.hex()}+{key_b64}"
    body = f"example.com/log\n7\n{base64.b64encode(bytes(32)).decode()}\n"
    sig = sk.sign(body.encode())
    note = body + "\n" + f"\u2014 {name} {base64.b64encode(key_hash + sig).decode()}\n"
    verify_note_signature(note, vkey)
    forged = note.replace("\n7\n", "\n8\n")
    with pytest.raises(InvalidSignature):
        verify_note_signature(forged, vkey)
