"""The log's Merkle tree and the offline proof verifiers against the RFC 6962
reference vectors (Certificate Transparency / transparency-dev), plus every
proof of every small tree against the reference definition."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maestro.runtime import provenance
from maestro.services.signer.merkle import MerkleTree

pytestmark = pytest.mark.timeout(30)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "rfc6962_vectors.json").read_text()
)


def _tree(count: int) -> MerkleTree:
    tree = MerkleTree()
    for i in range(count):
        tree.append(provenance.leaf_hash(f"leaf {i}".encode()))
    return tree


@pytest.fixture(scope="module")
def reference_tree() -> MerkleTree:
    tree = MerkleTree()
    for leaf in VECTORS["leaves"]:
        tree.append(provenance.leaf_hash(bytes.fromhex(leaf)))
    return tree


def test_roots_match_the_published_vectors(reference_tree: MerkleTree) -> None:
    assert reference_tree.root(0).hex() == VECTORS["empty_root"] == provenance.EMPTY_ROOT.hex()
    for size, root in enumerate(VECTORS["roots"], start=1):
        assert reference_tree.root(size).hex() == root, f"root of {size}"
        leaves = [reference_tree.leaf(i) for i in range(size)]
        assert provenance.merkle_root(leaves).hex() == root


@pytest.mark.parametrize(
    "vector", VECTORS["inclusion_proofs"], ids=lambda v: f"{v['leaf_index']}-of-{v['tree_size']}"
)
def test_inclusion_proofs_match_and_verify(reference_tree: MerkleTree, vector: Any) -> None:
    index, size = vector["leaf_index"], vector["tree_size"]
    expected = [bytes.fromhex(h) for h in vector["proof"]]
    assert reference_tree.inclusion_proof(index, size) == expected
    root = bytes.fromhex(VECTORS["roots"][size - 1])
    provenance.verify_inclusion(index, size, reference_tree.leaf(index), expected, root)


@pytest.mark.parametrize(
    "vector",
    VECTORS["consistency_proofs"],
    ids=lambda v: f"{v['first_size']}-to-{v['second_size']}",
)
def test_consistency_proofs_match_and_verify(reference_tree: MerkleTree, vector: Any) -> None:
    first, second = vector["first_size"], vector["second_size"]
    expected = [bytes.fromhex(h) for h in vector["proof"]]
    assert reference_tree.consistency_proof(first, second) == expected
    provenance.verify_consistency(
        first,
        second,
        bytes.fromhex(VECTORS["roots"][first - 1]),
        bytes.fromhex(VECTORS["roots"][second - 1]),
        expected,
    )


def test_every_proof_of_every_small_tree_verifies() -> None:
    tree = _tree(40)
    for size in range(1, 41):
        root = provenance.merkle_root([tree.leaf(i) for i in range(size)])
        assert tree.root(size) == root
        for index in range(size):
            provenance.verify_inclusion(
                index, size, tree.leaf(index), tree.inclusion_proof(index, size), root
            )
        for first in range(1, size + 1):
            provenance.verify_consistency(
                first, size, tree.root(first), root, tree.consistency_proof(first, size)
            )


def test_tampered_proofs_are_rejected(reference_tree: MerkleTree) -> None:
    root = reference_tree.root(8)
    proof = reference_tree.inclusion_proof(5, 8)
    leaf = reference_tree.leaf(5)
    bad = [proof[0], bytes([proof[1][0] ^ 1]) + proof[1][1:], proof[2]]
    with pytest.raises(provenance.ProofError, match=r"computed root [0-9a-f]{64} != checkpoint"):
        provenance.verify_inclusion(5, 8, leaf, bad, root)
    with pytest.raises(provenance.ProofError, match="computed root"):
        provenance.verify_inclusion(4, 8, leaf, proof, root)  # wrong index
    with pytest.raises(provenance.ProofError, match="too few"):
        provenance.verify_inclusion(5, 8, leaf, proof[:2], root)
    with pytest.raises(provenance.ProofError, match="too many"):
        provenance.verify_inclusion(5, 8, leaf, [*proof, proof[0]], root)
    with pytest.raises(provenance.ProofError, match="not below tree size"):
        provenance.verify_inclusion(8, 8, leaf, proof, root)
    consistency = reference_tree.consistency_proof(6, 8)
    with pytest.raises(provenance.ProofError, match="first root"):
        provenance.verify_consistency(6, 8, reference_tree.root(5), root, consistency)
    with pytest.raises(provenance.ProofError, match="second root"):
        provenance.verify_consistency(
            6, 8, reference_tree.root(6), reference_tree.root(7), consistency
        )
    with pytest.raises(provenance.ProofError, match="must be empty"):
        provenance.verify_consistency(3, 3, root, root, consistency)
    with pytest.raises(provenance.ProofError, match="is empty"):
        provenance.verify_consistency(6, 8, reference_tree.root(6), root, [])


def test_truncate_forgets_uncommitted_leaves() -> None:
    tree = _tree(13)
    roots = [tree.root(n) for n in range(14)]
    for i in range(13, 30):
        tree.append(provenance.leaf_hash(f"other {i}".encode()))
    tree.truncate(13)
    assert tree.size == 13
    assert [tree.root(n) for n in range(14)] == roots
    tree.append(provenance.leaf_hash(b"leaf 13"))
    assert tree.root() == _tree(14).root()
