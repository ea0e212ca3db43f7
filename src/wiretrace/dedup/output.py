"""The output directory: clusters.jsonl, skipped.jsonl and summary.json."""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from wiretrace.dedup.components import label_components
from wiretrace.dedup.input import Skipped, input_kind
from wiretrace.dedup.verify import EdgeArrays
from wiretrace.shingling import sorted_unique
from wiretrace.types import I64

log = logging.getLogger(__name__)


def _pair_json(a: str, b: str, containment: float, coverage: float, jaccard: float) -> str:
    """One entry of a cluster's "pairs", as json.dumps writes it (floats by repr, as json does)."""
    return f'{{"a": {a}, "b": {b}, "containment": {containment!r}, "coverage": {coverage!r}, "jaccard": {jaccard!r}}}'


def centrality(n: int, pa: I64, pb: I64, jaccard: npt.NDArray[np.float64]) -> I64:
    """How central each of `n` documents is in its cluster: the summed Jaccard of its verified pairs, in
    units of 1e-4 (the scores are rounded to 4 places), so sums are exact whatever the edges' order."""
    units = np.rint(jaccard * 10_000)
    return (np.bincount(pa, weights=units, minlength=n) + np.bincount(pb, weights=units, minlength=n)).astype(np.int64)


def write_clusters(
    writer: OutputWriter,
    keys: I64,
    ids: list[str],
    n_tokens: I64,
    variants: I64,
    edges: EdgeArrays,
    singletons: Iterable[tuple[int, str]] = (),
) -> None:
    """The clusters of documents `keys` (ascending; at least those with an edge) joined by `edges`, in
    order of their first member, with a line of its own for each document of `singletons` ((key, id) in
    key order; those with an edge are skipped).

    Components come from `label_components`. The representative is the most complete, least altered
    member: the one whose verified pairs have the highest summed Jaccard (a story shares more with each
    of its copies than they share with each other: each copy changed it its own way, and a cut copy
    lacks what the others have), then, among members alike in comparison form (a scan that misread
    only look-alikes), the least altered as written (`variants`, from ``text.comparison_hashes``),
    then the one with most tokens, then the first. Whole-array steps and lines rendered straight to
    the text ``json.dumps`` would write: the per-edge and per-document Python objects were most of
    this step on a million articles.
    """
    n = int(keys.size)
    pa, pb = np.searchsorted(keys, edges.a), np.searchsorted(keys, edges.b)
    root = label_components(n, pa, pb)
    central_units = centrality(n, pa, pb, edges.jaccard)
    nodes = sorted_unique(np.concatenate((pa, pb)))  # only documents with an edge are in a cluster of two or more
    by_root = nodes[np.argsort(root[nodes], kind="stable")]  # members ascending within each root
    r_sorted = root[by_root]
    starts = np.flatnonzero(np.concatenate(([True], r_sorted[1:] != r_sorted[:-1]))) if nodes.size else nodes
    m_cut = [*starts.tolist(), int(nodes.size)]
    e_order = np.lexsort((pb, pa, root[pa]))  # edges by root, then (a, b)
    e_root = root[pa][e_order].tolist()
    e_a, e_b = pa[e_order].tolist(), pb[e_order].tolist()
    e_c = edges.containment[e_order].tolist()
    e_v = edges.coverage[e_order].tolist()
    e_j = edges.jaccard[e_order].tolist()
    sizes = n_tokens.tolist()
    altered = variants.tolist()
    central = central_units.tolist()
    key_list = keys.tolist()
    quoted: dict[int, str] = {}

    def q(i: int) -> str:
        text = quoted.get(i)
        if text is None:
            text = quoted[i] = json.dumps(ids[i], ensure_ascii=False)
        return text

    lone = iter(singletons)
    in_cluster = set(key_list[i] for i in nodes.tolist())
    next_lone = next(lone, None)

    def singles_before(key: int | None) -> None:
        nonlocal next_lone
        while next_lone is not None and (key is None or next_lone[0] < key):
            if next_lone[0] not in in_cluster:
                text = json.dumps(next_lone[1], ensure_ascii=False)
                writer.cluster_line(1, [text], text, [])
            next_lone = next(lone, None)

    members_all = by_root.tolist()
    e = 0
    for lo, hi in itertools.pairwise(m_cut):
        members = members_all[lo:hi]
        r = members[0]
        singles_before(key_list[r])
        pairs: list[str] = []
        while e < len(e_root) and e_root[e] == r:
            pairs.append(_pair_json(q(e_a[e]), q(e_b[e]), e_c[e], e_v[e], e_j[e]))
            e += 1
        rep = min(members, key=lambda m: (-central[m], altered[m], -sizes[m], m))
        writer.cluster_line(len(members), [q(m) for m in members], q(rep), pairs)
    singles_before(None)


class OutputWriter:
    """clusters.jsonl, skipped.jsonl and summary.json in the output directory."""

    def __init__(self, out_dir: Path, clusters: bool = True) -> None:
        """`clusters=False` (tagging against a wire) writes no clusters.jsonl."""
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self._clusters = (out_dir / "clusters.jsonl").open("w", encoding="utf-8") if clusters else None
        self._skipped = (out_dir / "skipped.jsonl").open("w", encoding="utf-8")
        self.sizes: Counter[int] = Counter()
        self.skips: Counter[str] = Counter()
        self.n_clusters = 0

    def skip(self, s: Skipped) -> None:
        """One line of skipped.jsonl: the record's line (JSONL) or row (Parquet), counted from 1 as
        editors and `wiretrace index` count them."""
        self.skips[s.reason] += 1
        unit = "row" if input_kind(s.file) == "parquet" else "line"
        if self.skips[s.reason] <= 5:
            log.warning("skipped %s:%d (id %s): %s", s.file, s.record + 1, s.id, s.reason)
        line = {"file": s.file, unit: s.record + 1, "id": s.id, "reason": s.reason}
        self._skipped.write(json.dumps(line, ensure_ascii=False) + "\n")

    def cluster_line(self, size: int, members: list[str], representative: str, pairs: list[str]) -> None:
        """One line of clusters.jsonl, already rendered: JSON-quoted member ids and representative, pair objects."""
        assert self._clusters is not None, "a writer made with clusters=False"
        self.sizes[size] += 1
        self._clusters.write(
            f'{{"cluster_id": {self.n_clusters}, "members": [{", ".join(members)}], '
            f'"representative": {representative}, "pairs": [{", ".join(pairs)}]}}\n'
        )
        self.n_clusters += 1

    def finish(self, documents: int, extra: dict[str, Any]) -> dict[str, Any]:
        if self._clusters is not None:
            self._clusters.close()
        self._skipped.close()
        in_clusters = sum(size * n for size, n in self.sizes.items() if size > 1)
        histogram = Counter(self.sizes)
        histogram[1] = documents - in_clusters
        summary = {
            "documents": documents,
            "skipped": dict(sorted(self.skips.items())),
            "clusters": sum(n for size, n in self.sizes.items() if size > 1),
            "duplicates": in_clusters - sum(n for size, n in self.sizes.items() if size > 1),
            "singletons": histogram[1],
            "size_histogram": {str(s): histogram[s] for s in sorted(histogram)},
            **extra,
        }
        (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return summary
