"""The straightforward definitions the de-duplication stages are tested against.

One pair at a time through the tests' reference alignment (`verify`), every pair of a bucket
(`bucket_pairs`), components by union-find (`components`), and a print's
documents one by one (`printed_docs`): slow, obviously right, and used by no engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from tests.align_reference import reference_align
from wiretrace.dedup.params import DedupParams
from wiretrace.dedup.prints import Printed, offsets
from wiretrace.dedup.verify import Corpus, Edge, EdgeArrays, align_oriented, orient
from wiretrace.scoring import ScoringParams
from wiretrace.shingling import shingle_hashes
from wiretrace.types import I64, U32, U64


def bucket_pairs(members: Sequence[int], max_bucket: int) -> Iterator[tuple[int, int]]:
    """Candidate pairs of one bucket (members sorted, distinct): all pairs, or a star if huge."""
    n = len(members)
    if n > max_bucket:
        first = members[0]
        for m in members[1:]:
            yield first, m
        return
    for i in range(n - 1):
        a = members[i]
        for b in members[i + 1 :]:
            yield a, b


def verify(key_a: int, tokens_a: U32, key_b: int, tokens_b: U32, sp: ScoringParams, dp: DedupParams) -> Edge | None:
    """Is the pair a duplicate? Aligns the shorter document against the longer one with the tests'
    reference alignment (`reference_align`, unit bigram weights) and applies ``dedup.verify``'s rules."""
    na, nb = int(tokens_a.size), int(tokens_b.size)
    short, long_ = (tokens_a, tokens_b) if (na, key_a) <= (nb, key_b) else (tokens_b, tokens_a)
    a, b = min(key_a, key_b), max(key_a, key_b)
    if np.array_equal(short, long_) and short.size >= sp.shingle_size:
        return Edge(a, b, 1.0, 1.0, 1.0)
    if short.size < min(dp.min_coverage, dp.lead_coverage) * long_.size:  # cannot reach the coverage asked
        return None
    bigrams = shingle_hashes(short, 2)
    k = sp.shingle_size
    al = reference_align(
        shingle_hashes(short, k), bigrams, np.ones(bigrams.size), shingle_hashes(long_, k), int(long_.size), sp
    )
    if al is None or al.containment < dp.threshold:
        return None
    lead = min(p.story_start for p in al.passages) <= sp.max_gap
    if al.coverage < dp.min_coverage and not (lead and al.coverage >= dp.lead_coverage):
        return None
    return Edge(a, b, round(al.containment, 4), round(al.coverage, 4), round(al.jaccard, 4))


def verify_many(pairs: list[tuple[int, U32, int, U32]], sp: ScoringParams, dp: DedupParams) -> list[Edge]:
    """`verify` of many (key a, tokens a, key b, tokens b), through `align_pairs`; edges in pair order."""
    if not pairs:
        return []
    keys = np.array([k for a, _, b, _ in pairs for k in (a, b)], dtype=np.int64)
    docs = [t for _, ta, _, tb in pairs for t in (ta, tb)]
    toff = offsets(np.array([d.size for d in docs], dtype=np.int64))
    corpus = Corpus.of(keys, np.concatenate(docs).astype(np.uint32, copy=False), toff, sp.shingle_size)
    both = np.arange(0, 2 * len(pairs), 2, dtype=np.int64)
    return align_pairs(corpus, both, both + 1, sp, dp)


def align_pairs(corpus: Corpus, left: I64, right: I64, sp: ScoringParams, dp: DedupParams) -> list[Edge]:
    """`verify` of the pairs (left[i], right[i]) of `corpus` documents through the batch code, as `Edge` objects."""
    return _align_pairs_arrays(corpus, left, right, sp, dp).edges()


def _align_pairs_arrays(corpus: Corpus, left: I64, right: I64, sp: ScoringParams, dp: DedupParams) -> EdgeArrays:
    """The engines' batch verification (`align_oriented`, on ``scoring.align_pairs``) of the pairs
    (left[i], right[i]) of `corpus` documents, edges in pair order."""
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    short, long_ = orient(corpus, left, right)
    ok, containment, coverage, jaccard = align_oriented(corpus, short, long_, sp, dp)
    x, y = corpus.keys[short[ok]], corpus.keys[long_[ok]]
    return EdgeArrays(np.minimum(x, y), np.maximum(x, y), containment, coverage, jaccard)


def components(n: int, edges: Iterable[tuple[int, int]]) -> np.ndarray:
    """Union-find: the smallest member index of each node's component (`label_components`' reference)."""
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


def printed_docs(printed: Printed) -> Iterator[tuple[int, str, U32, U64]]:
    """(key, id, token hashes, distinct band keys) of each document of `printed`."""
    order = np.lexsort((printed.bands, printed.owner))
    b, o = printed.bands[order], printed.owner[order]
    keep = np.ones(b.size, dtype=bool)
    keep[1:] = (b[1:] != b[:-1]) | (o[1:] != o[:-1])
    b, boff = b[keep], offsets(np.bincount(o[keep], minlength=len(printed.ids)))
    for i, key in enumerate(printed.keys.tolist()):
        yield key, printed.ids[i], printed.tokens[printed.toff[i] : printed.toff[i + 1]], b[boff[i] : boff[i + 1]]
