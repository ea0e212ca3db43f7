"""Stage 3, candidate pairs: documents sharing a band key.

A bucket of up to ``max_bucket`` documents gives all its pairs; a bigger one
(stock text, or a story syndicated hundreds of times) gives only a star from
its first document, so work stays linear in the bucket and copies still connect.
"""

from __future__ import annotations

import numpy as np

from wiretrace.shingling import sorted_unique
from wiretrace.types import U64


def _shared_keys_only(doc_index: np.ndarray, keys: U64) -> tuple[np.ndarray, U64]:
    """The entries whose key occurs more than once, and a few others: a key met once pairs nothing.

    Sorting the keys alone is SIMD-fast (~8x an argsort); the keys seen twice
    mark a bitmap by their low bits (band keys are hashes), and an entry is
    kept if its bit is set, so every entry of a repeated key is kept (exact)
    plus the singletons that share a bit (~1 in 8). The argsort that follows
    then sorts a fraction of the entries.
    """
    if keys.size < 1 << 16:
        return doc_index, keys
    ordered = np.sort(keys)
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    bits = max(16, int(twice.size).bit_length() + 3)
    mask = np.uint64((1 << bits) - 1)
    marked = np.zeros(1 << bits, dtype=bool)
    marked[(twice & mask).astype(np.int64)] = True
    keep = marked[(keys & mask).astype(np.int64)]
    return doc_index[keep], keys[keep]


def candidate_pairs(doc_index: np.ndarray, keys: U64, max_bucket: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (i, j), i < j, of dense document indices (< 2**32) sharing a band key (as `bucket_pairs`
    per bucket, members ascending)."""
    doc_index, keys = _shared_keys_only(doc_index, keys)
    # Members must stay ascending within a bucket, as a stable sort would keep them; an unstable
    # argsort and then one sort of (bucket number, member) is ~2x faster than a stable argsort.
    order = np.argsort(keys)
    k = keys[order]
    run = np.zeros(k.size, dtype=np.uint64)
    np.cumsum(k[1:] != k[:-1], out=run[1:])
    d = (np.sort((run << np.uint64(32)) | doc_index[order].astype(np.uint64)) & np.uint64(0xFFFFFFFF)).astype(np.int64)
    repeat = np.zeros(k.size, dtype=bool)  # a key a document lists twice
    repeat[1:] = (k[1:] == k[:-1]) & (d[1:] == d[:-1])
    k, d = k[~repeat], d[~repeat]
    starts = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1])))
    sizes = np.diff(np.append(starts, k.size))
    left: list[np.ndarray] = [np.empty(0, np.int64)]
    right: list[np.ndarray] = [np.empty(0, np.int64)]
    for size in sorted_unique(sizes[(sizes >= 2) & (sizes <= max_bucket)]).tolist():
        first = starts[sizes == size]
        i, j = np.triu_indices(size, 1)
        left.append(d[(first[:, None] + i[None, :]).reshape(-1)])
        right.append(d[(first[:, None] + j[None, :]).reshape(-1)])
    big = sizes > max_bucket
    if big.any():  # a star from the first member
        first, n = starts[big], sizes[big]
        left.append(np.repeat(d[first], n - 1))
        right.append(
            d[
                np.repeat(first + 1, n - 1)
                + np.arange(int((n - 1).sum()))
                - np.repeat(np.cumsum(n - 1) - (n - 1), n - 1)
            ]
        )
    code = sorted_unique(np.concatenate(left).astype(np.int64) << 32 | np.concatenate(right).astype(np.int64))
    return code >> 32, code & 0xFFFFFFFF
