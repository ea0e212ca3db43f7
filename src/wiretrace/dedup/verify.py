"""Stage 4, verification: which candidate pairs are copies, from their exact shingles.

A pair is a duplicate when the passages ``scoring.align`` would find (unit
bigram weights: a stock phrase cannot make most of a story) cover at least
``threshold`` of the shorter document's tokens (containment) and
``min_coverage`` of the longer one's (so a short brief quoted inside several
roundups cannot chain them). ``align_oriented`` computes exactly that for
thousands of pairs per numpy pass (``tests/dedup_reference.py`` holds the
one-pair-at-a-time reference it is tested against). The answer depends only on
the two documents' tokens, so documents with identical tokens (verbatim
reprints) share a content class and each distinct (short, long) pair of
contents is aligned once (``align_pairs_distinct``); every candidate pair
still gets its edge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wiretrace.dedup.params import DedupParams
from wiretrace.scoring import ScoringParams
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


def _union_lengths(group: I64, lo: I64, hi: I64, n_groups: int) -> I64:
    """Tokens covered by the union of the intervals [lo, hi) of each group.

    Intervals must be ordered by (group, lo). Each adds what lies past the
    furthest end of the earlier intervals of its group; shifting every group by
    a multiple of a span larger than any end keeps the running maximum inside it.
    """
    if group.size == 0:
        return np.zeros(n_groups, dtype=np.int64)
    span = int(hi.max()) + 1
    shift = group * span
    reach = np.maximum.accumulate(hi + shift)
    before = np.concatenate(([0], reach[:-1]))
    added = np.maximum(0, hi + shift - np.maximum(lo + shift, before))
    return np.bincount(group, weights=added, minlength=n_groups).astype(np.int64)


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

    @staticmethod
    def of(keys: I64, tokens: U32, toff: I64, k: int) -> Corpus:
        return Corpus(keys, tokens, toff, blocked_shingle_hashes(tokens, k), blocked_shingle_hashes(tokens, 2))


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
    """The core of `align_pairs_arrays` for pairs already oriented: (indices of the pairs that are
    duplicates, their containment, coverage, Jaccard). It reads nothing but the two documents' hashes,
    so pairs with the same (short, long) contents get the same answer."""
    k, g = sp.shingle_size, sp.max_gap
    sizes = np.diff(corpus.toff)
    ns, nl = sizes[short], sizes[long_]
    m_s, m_l = np.maximum(ns - k + 1, 0), np.maximum(nl - k + 1, 0)
    # `verify`'s size test, then `align`'s: no shingles on one side, no alignment.
    live = ~(ns < dp.min_coverage * nl) & (m_s > 0) & (m_l > 0)
    order = np.flatnonzero(live)
    if order.size == 0:
        return _NO_SCORES
    short, long_, ns, nl, m_s, m_l = short[order], long_[order], ns[order], nl[order], m_s[order], m_l[order]
    pos_bits = max(1, int(m_l.max()).bit_length())
    pair_bits = max(1, (order.size - 1).bit_length())
    if pair_bits + max(33 + pos_bits, 2 * pos_bits) > 64:  # huge documents in a big batch: halve it
        half = order.size // 2
        first = align_oriented(corpus, short[:half], long_[:half], sp, dp)
        second = align_oriented(corpus, short[half:], long_[half:], sp, dp)
        return (
            np.concatenate((order[first[0]], order[half + second[0]])),
            *(np.concatenate((x, y)) for x, y in zip(first[1:], second[1:], strict=True)),
        )  # type: ignore[return-value]
    n = order.size
    pb = np.uint64(pos_bits)
    pos_mask = np.uint64((1 << pos_bits) - 1)
    # Every shingle of both sides as pair | hash | side | position (side 0: story), in one sort: a
    # (pair, hash) group lists its story positions first, ascending, then its article positions.
    s_idx, s_off = gather(corpus.toff[long_], m_l)
    a_idx, a_off = gather(corpus.toff[short], m_s)
    pair_no = np.arange(n, dtype=np.uint64)
    merged = np.sort(
        np.concatenate(
            (
                (np.repeat(pair_no, m_l) << (pb + np.uint64(33)))
                | (corpus.shingles[s_idx].astype(np.uint64) << (pb + np.uint64(1)))
                | s_off.astype(np.uint64),
                (np.repeat(pair_no, m_s) << (pb + np.uint64(33)))
                | (corpus.shingles[a_idx].astype(np.uint64) << (pb + np.uint64(1)))
                | (np.uint64(1) << pb)
                | a_off.astype(np.uint64),
            )
        )
    )
    group = merged >> (pb + np.uint64(1))
    side = ((merged >> pb) & np.uint64(1)).astype(bool)
    begins = np.ones(merged.size, dtype=bool)
    np.not_equal(group[1:], group[:-1], out=begins[1:])
    starts = np.flatnonzero(begins)
    ends = np.append(starts[1:], merged.size)
    # Jaccard of the distinct shingles (a group is one distinct hash of one pair), counted per pair
    # from running sums, as groups come in pair order.
    in_story, in_article = ~side[starts], side[ends - 1]
    bounds = np.searchsorted(merged[starts] >> (pb + np.uint64(33)), pair_no, side="left")
    bounds = np.append(bounds, starts.size)

    def per_pair(flags: np.ndarray) -> I64:
        run = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
        return run[bounds[1:]] - run[bounds[:-1]]

    distinct_story, distinct_article = per_pair(in_story), per_pair(in_article)
    inter = per_pair(in_story & in_article)
    # An article shingle matches when its group starts with a story entry: the first story position.
    group_no = np.cumsum(begins) - 1
    hit = side & in_story[group_no]
    if not hit.any():
        return _NO_SCORES
    h = merged[hit]
    # Matches in (pair, article position) order, each with its story position.
    matches = np.sort(
        ((h >> (pb + np.uint64(33))) << (pb + pb)) | ((h & pos_mask) << pb) | (merged[starts] & pos_mask)[group_no[hit]]
    )
    h_pair = (matches >> (pb + pb)).astype(np.int64)
    a_pos = ((matches >> pb) & pos_mask).astype(np.int64)
    s_pos = (matches & pos_mask).astype(np.int64)
    diag = s_pos - a_pos
    new = np.ones(a_pos.size, dtype=bool)
    new[1:] = (h_pair[1:] != h_pair[:-1]) | (np.diff(a_pos) > g) | (np.abs(np.diff(diag)) > g)
    seg_lo = np.flatnonzero(new)
    seg_hi = np.append(seg_lo[1:], a_pos.size)
    seg_of = np.cumsum(new) - 1
    # Bigram positions under a segment's shingles: [a_pos, a_pos + k - 2] of each hit, each position once.
    prev_end = np.full(a_pos.size, -1, dtype=np.int64)  # last covered position of the earlier hits of the segment
    prev_end[1:] = a_pos[:-1] + k - 2
    prev_end[new] = -1
    first_pos = np.maximum(a_pos, prev_end + 1)
    count = np.maximum(0, a_pos + k - 1 - first_pos)
    b_idx, _ = gather(corpus.toff[short[h_pair]] + first_pos, count)
    b_seg = np.repeat(seg_of, count).astype(np.uint64)
    distinct_keys = sorted_unique((b_seg << np.uint64(32)) | corpus.bigrams[b_idx].astype(np.uint64))
    distinct = np.bincount((distinct_keys >> np.uint64(32)).astype(np.int64), minlength=seg_lo.size)
    passage = distinct.astype(np.float64) >= sp.min_passage_weight
    p_lo, p_hi = seg_lo[passage], seg_hi[passage]
    if p_lo.size == 0:
        return _NO_SCORES
    p_pair = h_pair[p_lo]
    a0, a1 = a_pos[p_lo], a_pos[p_hi - 1] + k
    s0 = np.minimum.reduceat(s_pos, seg_lo)[passage]
    s1 = np.maximum.reduceat(s_pos, seg_lo)[passage] + k
    covered_a = _union_lengths(p_pair, a0, a1, n)
    by_story = np.lexsort((s0, p_pair))
    covered_s = _union_lengths(p_pair[by_story], s0[by_story], s1[by_story], n)
    containment = covered_a / np.maximum(1, ns)
    coverage = covered_s / np.maximum(1, nl)
    has_passage = np.bincount(p_pair, minlength=n) > 0
    ok = np.flatnonzero(has_passage & (containment >= dp.threshold) & (coverage >= dp.min_coverage))
    both = inter[ok]
    union = distinct_article[ok] + distinct_story[ok] - both
    # The same float divisions as `verify` (int64 counts are exact in float64), then Python's rounding.
    jaccard = np.where(union > 0, both.astype(np.float64) / np.maximum(union, 1), 0.0)
    return (
        order[ok],
        _round4(covered_a[ok].astype(np.float64) / np.maximum(1, ns[ok])),
        _round4(covered_s[ok].astype(np.float64) / np.maximum(1, nl[ok])),
        _round4(jaccard),
    )


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
