"""Stage 5, clusters: connected components of the verified pairs.

The representative of a cluster is its longest member (most tokens), ties to
the earliest. ``label_components`` (whole-array hooking and pointer jumping)
runs here and on the Spark driver up to ``spark.DRIVER_EDGES`` edges, else
Spark runs large-star/small-star.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from wiretrace.types import I64


def components(n: int, edges: Iterable[tuple[int, int]]) -> np.ndarray:
    """Union-find: the smallest member index of each node's component."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(x) for x in range(n)], dtype=np.int64)


def label_components(n: int, a: I64, b: I64) -> I64:
    """`components` of the edges (a[i], b[i]) with whole-array steps: hook each edge's larger root under
    its smaller one, then jump pointers until every node points at a root; repeat until no edge joins two
    roots. A component's smallest node is never hooked (nothing smaller is in it), so it is the root."""
    label = np.arange(n, dtype=np.int64)
    while a.size:
        la, lb = label[a], label[b]
        apart = la != lb
        if not apart.any():
            break
        lo, hi = np.minimum(la[apart], lb[apart]), np.maximum(la[apart], lb[apart])
        np.minimum.at(label, hi, lo)
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
        a, b = a[apart], b[apart]
    return label
