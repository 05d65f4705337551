"""The transparency log's Merkle tree in memory: RFC 6962 roots, inclusion
proofs (PATH) and consistency proofs (SUBPROOF) for any tree size.

The tree keeps the hash of every complete, aligned subtree (level ``k`` holds
the hashes of the subtrees of ``2**k`` leaves), so an append costs O(log n)
hashes and a root or proof O(log² n) at most, for any size up to the current
one. It is rebuilt from the stored leaves at start-up (one hash per node) and
checked against the latest stored checkpoint.

Thread-safety: one writer appends (and may :meth:`truncate` what it appended
when its transaction fails); readers only ask about sizes up to the last
committed one, whose hashes never change. Python list appends and slices are
atomic, so readers need no lock.
"""

from __future__ import annotations

from maestro.runtime.provenance import EMPTY_ROOT, node_hash


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n`` >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only RFC 6962 tree over leaf hashes."""

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = [[]]

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        return self._levels[0][index]

    def append(self, leaf_hash: bytes) -> int:
        """Appends a leaf hash; returns its index."""
        index = len(self._levels[0])
        self._levels[0].append(leaf_hash)
        level, position = 0, index
        while position & 1:
            left, right = self._levels[level][position - 1], self._levels[level][position]
            if len(self._levels) == level + 1:
                self._levels.append([])
            self._levels[level + 1].append(node_hash(left, right))
            level += 1
            position >>= 1
        return index

    def truncate(self, size: int) -> None:
        """Forgets every leaf from ``size`` on (undoes uncommitted appends)."""
        for level, hashes in enumerate(self._levels):
            del hashes[size >> level :]

    def _hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for the ranges the RFC 6962 recursion visits."""
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self._levels[n.bit_length() - 1][start // n]
        k = _split(n)
        return node_hash(self._hash(start, start + k), self._hash(start + k, end))

    def _check_size(self, tree_size: int) -> None:
        if not 0 <= tree_size <= self.size:
            raise ValueError(f"tree size {tree_size} is not in [0, {self.size}]")

    def root(self, tree_size: int | None = None) -> bytes:
        """Root hash of the first ``tree_size`` leaves (default: all)."""
        size = self.size if tree_size is None else tree_size
        self._check_size(size)
        return EMPTY_ROOT if size == 0 else self._hash(0, size)

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        """RFC 6962 PATH(leaf_index, D[0:tree_size]), leaf level first."""
        self._check_size(tree_size)
        if not 0 <= leaf_index < tree_size:
            raise ValueError(f"leaf index {leaf_index} is not below tree size {tree_size}")
        path: list[bytes] = []
        start, end, m = 0, tree_size, leaf_index
        while end - start > 1:
            k = _split(end - start)
            if m < k:
                path.append(self._hash(start + k, end))
                end = start + k
            else:
                path.append(self._hash(start, start + k))
                start, m = start + k, m - k
        path.reverse()
        return path

    def consistency_proof(self, first_size: int, second_size: int) -> list[bytes]:
        """RFC 6962 PROOF(first_size, D[0:second_size]) (SUBPROOF with b = true)."""
        self._check_size(second_size)
        if not 0 < first_size <= second_size:
            raise ValueError(f"first size {first_size} is not in [1, {second_size}]")
        path: list[bytes] = []
        start, end, m, complete = 0, second_size, first_size, True
        while True:
            n = end - start
            if m == n:
                if not complete:
                    path.append(self._hash(start, end))
                break
            k = _split(n)
            if m <= k:
                path.append(self._hash(start + k, end))
                end = start + k
            else:
                path.append(self._hash(start, start + k))
                start, m, complete = start + k, m - k, False
        path.reverse()
        return path
