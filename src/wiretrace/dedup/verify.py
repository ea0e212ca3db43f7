"""Stage 4, verification: which candidate pairs are copies, from their shingles in comparison form.

Pairs are aligned by Match's own alignment core (``scoring.align_pairs``: the
compiled matching, chaining and weighing of ``scoring.align_many``, with unit
bigram weights, so a stock phrase cannot make most of a story), many pairs per
compiled pass. The shorter document is a copy of the longer when

* the passages cover at least ``threshold`` of its tokens (containment), and
* they cover ``min_coverage`` of the longer one's (so a short brief quoted
  inside several roundups cannot chain them), or, when the shorter one is the
  longer one's *lead* (its passages start where the longer one starts, within
  ``max_gap`` tokens: a story cut from the bottom to fit a page), ``lead_coverage``;
* or the two have exactly the same tokens, a shingle or more (containment and coverage 1).

``tests/dedup_reference.py`` holds the one-pair-at-a-time definition it is
tested against. The answer depends only on the two documents' tokens, so
documents with identical tokens (verbatim reprints) share a content class and
each distinct (short, long) pair of contents is aligned once
(``align_pairs_distinct``); every candidate pair still gets its edge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wiretrace.dedup.params import DedupParams
from wiretrace.scoring import ScoringParams, align_pairs
from wiretrace.shingling import shingle_hashes, sorted_unique
from wiretrace.types import I64, U32


@dataclass(frozen=True, slots=True)
class Edge:
    a: int  # doc keys, a < b
    b: int
    containment: float  # of the shorter document in the longer
    coverage: float  # of the longer document
    jaccard: float


def gather(starts: I64, sizes: I64) -> tuple[I64, I64]:
    """Flat indices of the ranges [starts[i], starts[i] + sizes[i]), and each index's offset in its range."""
    total = int(sizes.sum())
    first = np.cumsum(sizes) - sizes
    offset = np.arange(total, dtype=np.int64) - np.repeat(first, sizes)
    return np.repeat(starts, sizes) + offset, offset


@dataclass(frozen=True)
class Corpus:
    """Token hashes of many documents (flat, ``toff`` offsets) with their shingle and bigram hashes.

    Shingle j of document i is ``shingles[toff[i] + j]`` for j < n_i - k + 1
    (hashes that straddle two documents are never read), likewise bigrams, so a
    batch of pairs gathers what it needs without hashing anything again.
    """

    keys: I64
    tokens: U32
    toff: I64
    shingles: U32
    bigrams: U32
    distinct: I64  # distinct shingles of each document (of those with pairs: the others are never read)

    @staticmethod
    def of(keys: I64, tokens: U32, toff: I64, k: int) -> Corpus:
        shingles = blocked_shingle_hashes(tokens, k)
        docs = np.arange(toff.size - 1, dtype=np.int64)
        return Corpus(
            keys, tokens, toff, shingles, blocked_shingle_hashes(tokens, 2), distinct_shingles(shingles, toff, docs, k)
        )


def distinct_shingles(shingles: U32, toff: I64, docs: I64, k: int) -> I64:
    """How many distinct shingles each of `docs` has (an entry per document of `toff`; 0 for the others)."""
    out = np.zeros(toff.size - 1, dtype=np.int64)
    sizes = np.maximum(toff[docs + 1] - toff[docs] - k + 1, 0)
    idx, _ = gather(toff[docs], sizes)
    doc = np.repeat(np.arange(docs.size, dtype=np.uint64), sizes)
    code = sorted_unique((doc << np.uint64(32)) | shingles[idx].astype(np.uint64))
    out[docs] = np.bincount((code >> np.uint64(32)).astype(np.int64), minlength=docs.size)
    return out


HASH_BLOCK = 1 << 16  # tokens per shingle_hashes call: its temporaries stay in cache


def blocked_shingle_hashes(tokens: U32, k: int, out: U32 | None = None) -> U32:
    """``shingle_hashes(tokens, k)``, computed block by block (6x faster on millions of tokens), into `out`."""
    size = max(int(tokens.size) - k + 1, 0)
    if out is None:
        out = np.empty(size, dtype=np.uint32)
    for lo in range(0, size, HASH_BLOCK):
        hi = min(lo + HASH_BLOCK, size)
        out[lo:hi] = shingle_hashes(tokens[lo : hi + k - 1], k)
    return out


@dataclass(frozen=True)
class EdgeArrays:
    """Verified edges as parallel arrays (what workers send back: no object per edge to pickle).

    Scores are already rounded as `Edge` rounds them (Python's ``round``), so
    ``edges()`` gives exactly the `Edge` objects ``verify`` would.
    """

    a: I64
    b: I64
    containment: npt.NDArray[np.float64]
    coverage: npt.NDArray[np.float64]
    jaccard: npt.NDArray[np.float64]

    @staticmethod
    def empty() -> EdgeArrays:
        f = np.empty(0, np.float64)
        return EdgeArrays(np.empty(0, np.int64), np.empty(0, np.int64), f, f, f)

    @staticmethod
    def concat(parts: Sequence[EdgeArrays]) -> EdgeArrays:
        parts = [EdgeArrays.empty(), *parts]
        return EdgeArrays(
            *(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(EdgeArrays))
        )

    def __len__(self) -> int:
        return int(self.a.size)

    def take(self, index: np.ndarray) -> EdgeArrays:
        return EdgeArrays(
            self.a[index], self.b[index], self.containment[index], self.coverage[index], self.jaccard[index]
        )

    def edges(self) -> list[Edge]:
        return [
            Edge(*row)
            for row in zip(
                self.a.tolist(),
                self.b.tolist(),
                self.containment.tolist(),
                self.coverage.tolist(),
                self.jaccard.tolist(),
                strict=True,
            )
        ]


def _round4(values: np.ndarray) -> npt.NDArray[np.float64]:
    """Python's ``round(x, 4)`` of each value (correctly rounded, unlike ``np.round``)."""
    return np.array([round(x, 4) for x in values.tolist()], dtype=np.float64)


def orient(corpus: Corpus, left: I64, right: I64) -> tuple[I64, I64]:
    """(shorter, longer) document of each pair, as `verify` orders them: fewer tokens, ties to the smaller key."""
    sizes = np.diff(corpus.toff)
    na, nb = sizes[left], sizes[right]
    a_short = (na < nb) | ((na == nb) & (corpus.keys[left] <= corpus.keys[right]))
    return np.where(a_short, left, right), np.where(a_short, right, left)


Scores = tuple[I64, npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]


def align_oriented(corpus: Corpus, short: I64, long_: I64, sp: ScoringParams, dp: DedupParams) -> Scores:
    """Which of the pairs (already oriented: shorter document first) are copies: (their indices,
    containment, coverage, Jaccard), the scores rounded as `Edge` rounds them. It reads nothing but the
    two documents' hashes, so pairs with the same (short, long) contents get the same answer."""
    k = sp.shingle_size
    sizes = np.diff(corpus.toff)
    ns, nl = sizes[short], sizes[long_]
    same = _same_tokens(corpus, short, long_, k)
    # Too short to reach the coverage asked (even of a lead), or no shingle on a side: no alignment.
    live = ~same & (ns >= min(dp.min_coverage, dp.lead_coverage) * nl) & (ns >= k) & (nl >= k)
    order = np.flatnonzero(live)
    al = align_pairs(corpus.shingles, corpus.bigrams, corpus.toff, short[order], long_[order], sp)
    containment = al.article_covered / np.maximum(1, ns[order])
    coverage = al.story_covered / np.maximum(1, nl[order])
    lead = (al.story_first >= 0) & (al.story_first <= sp.max_gap)
    copy = (
        al.has_passage
        & (containment >= dp.threshold)
        & ((coverage >= dp.min_coverage) | (lead & (coverage >= dp.lead_coverage)))
    )
    ok = order[copy]
    both = al.shared[copy]
    union = corpus.distinct[short[ok]] + corpus.distinct[long_[ok]] - both
    # The same float divisions as `align` (int64 counts are exact in float64), then Python's rounding.
    jaccard = np.where(union > 0, both.astype(np.float64) / np.maximum(union, 1), 0.0)
    identical = np.flatnonzero(same)
    ones = np.ones(identical.size)
    pick = np.argsort(np.concatenate((identical, ok)), kind="stable")
    return (
        np.concatenate((identical, ok))[pick],
        np.concatenate((ones, _round4(al.article_covered[copy] / np.maximum(1, ns[ok]))))[pick],
        np.concatenate((ones, _round4(al.story_covered[copy] / np.maximum(1, nl[ok]))))[pick],
        np.concatenate((ones, _round4(jaccard)))[pick],
    )


def _same_tokens(corpus: Corpus, short: I64, long_: I64, k: int) -> npt.NDArray[np.bool_]:
    """Which pairs are one document, or two with exactly the same tokens (at least a shingle of them)."""
    sizes = np.diff(corpus.toff)
    same: npt.NDArray[np.bool_] = (short == long_) & (sizes[short] >= k)
    check = np.flatnonzero(~same & (sizes[short] == sizes[long_]) & (sizes[short] >= k))
    if check.size:
        n = sizes[short[check]]
        a, _ = gather(corpus.toff[short[check]], n)
        b, _ = gather(corpus.toff[long_[check]], n)
        differ = np.add.reduceat((corpus.tokens[a] != corpus.tokens[b]).astype(np.int64), np.cumsum(n) - n)
        same[check[differ == 0]] = True
    return same


_NO_SCORES: Scores = (np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0))


def content_classes(corpus: Corpus, docs: I64) -> I64:
    """For each document, the first of `docs` (ascending) with exactly the same token hashes (itself if none).

    Archives reprint stories verbatim; the alignment of two documents depends
    only on their tokens, so each (short, long) pair of contents is aligned once
    (`align_distinct`). Grouped by a 128-bit digest, then compared token by token.
    """
    import xxhash

    cls = np.arange(corpus.toff.size - 1, dtype=np.int64)
    if docs.size == 0:
        return cls
    toff, tokens = corpus.toff.tolist(), corpus.tokens
    digest = [xxhash.xxh3_128_intdigest(tokens[toff[d] : toff[d + 1]].data) for d in docs.tolist()]
    hi = np.array([x >> 64 for x in digest], dtype=np.uint64)
    lo = np.array([x & 0xFFFFFFFFFFFFFFFF for x in digest], dtype=np.uint64)
    order = np.lexsort((docs, lo, hi))
    same = np.zeros(docs.size, dtype=bool)
    same[1:] = (hi[order][1:] == hi[order][:-1]) & (lo[order][1:] == lo[order][:-1])
    first = docs[order][np.maximum.accumulate(np.where(same, 0, np.arange(docs.size)))]
    for i in np.flatnonzero(same).tolist():  # a digest match: confirm it token by token
        d, f = int(docs[order[i]]), int(first[i])
        if np.array_equal(tokens[toff[d] : toff[d + 1]], tokens[toff[f] : toff[f + 1]]):
            cls[d] = f
    return cls


def distinct_pairs(cls: I64, short: I64, long_: I64) -> tuple[I64, I64, I64]:
    """The distinct (class of short, class of long) of oriented pairs, as (short, long) representatives,
    and the index of each pair's distinct pair."""
    code = sorted_unique(cls[short] << 32 | cls[long_])
    inverse = np.searchsorted(code, cls[short] << 32 | cls[long_])
    return code >> 32, code & 0xFFFFFFFF, inverse


def expand_scores(corpus: Corpus, short: I64, long_: I64, inverse: I64, n_distinct: int, scores: Scores) -> EdgeArrays:
    """The edges of the oriented pairs from the scores of their distinct pairs (`distinct_pairs`)."""
    ok, containment, coverage, jaccard = scores
    row = np.full(n_distinct, -1, dtype=np.int64)
    row[ok] = np.arange(ok.size)
    at = row[inverse]
    keep = np.flatnonzero(at >= 0)
    at = at[keep]
    x, y = corpus.keys[short[keep]], corpus.keys[long_[keep]]
    return EdgeArrays(np.minimum(x, y), np.maximum(x, y), containment[at], coverage[at], jaccard[at])


def align_pairs_distinct(
    corpus: Corpus, left: I64, right: I64, sp: ScoringParams, dp: DedupParams, batch: int = 2000
) -> EdgeArrays:
    """`align_pairs_arrays` of many pairs, each distinct pair of contents aligned once, `batch` at a time."""
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    short, long_ = orient(corpus, left, right)
    cls = content_classes(corpus, sorted_unique(np.concatenate((short, long_))))
    ds, dl, inverse = distinct_pairs(cls, short, long_)
    parts: list[Scores] = []
    for i in range(0, ds.size, batch):
        ok, containment, coverage, jaccard = align_oriented(corpus, ds[i : i + batch], dl[i : i + batch], sp, dp)
        parts.append((ok + i, containment, coverage, jaccard))
    return expand_scores(corpus, short, long_, inverse, int(ds.size), concat_scores(parts))


def concat_scores(parts: Sequence[Scores]) -> Scores:
    """`Scores` of consecutive batches, one after the other (their indices already made global)."""
    return (
        np.concatenate([_NO_SCORES[0], *(p[0] for p in parts)]),
        np.concatenate([_NO_SCORES[1], *(p[1] for p in parts)]),
        np.concatenate([_NO_SCORES[2], *(p[2] for p in parts)]),
        np.concatenate([_NO_SCORES[3], *(p[3] for p in parts)]),
    )
