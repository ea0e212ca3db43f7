"""Stage 5, clusters: connected components of the verified pairs.

``label_components`` (whole-array hooking and pointer jumping) is the one
routine of both engines: the Spark engine collects the verified edges as arrays
and clusters them on the driver with the same ``output.write_clusters``.
"""

from __future__ import annotations

import numpy as np

from wiretrace.types import I64


def label_components(n: int, a: I64, b: I64) -> I64:
    """The smallest node of each node's component, for the edges (a[i], b[i]), with whole-array steps:
    hook each edge's larger root under its smaller one, then jump pointers until every node points at a
    root; repeat until no edge joins two roots. A component's smallest node is never hooked (nothing
    smaller is in it), so it is the root."""
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
