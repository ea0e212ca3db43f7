"""Archive de-duplication: which articles of an archive are copies of each other.

The method, shared step for step by the local engine here and the Spark engine
(``dedup_spark``), so both give the same clusters on the same input:

1. Read records (JSONL, JSONL.gz, Parquet); empty or junk records are reported
   in ``skipped.jsonl`` and left out, never fatal.
2. Print every document with the one text core (``TextPipeline.stories``):
   token hashes and the LSH band keys of its adjacent shingle windows. The
   whole-document "topic" keys are left out: they find rewrites for Match, but
   pair up any two articles on one subject, which dedup must not verify.
3. Candidate pairs: documents sharing a band key. A bucket of up to
   ``max_bucket`` documents gives all its pairs; a bigger one (stock text, or a
   story syndicated hundreds of times) gives only a star from its first
   document, so work stays linear in the bucket and copies still connect.
4. Verify each pair with ``scoring.align`` on exact shingles (unit bigram
   weights: a stock phrase cannot make most of a story): the pair is a
   duplicate when the passages cover at least ``threshold`` of the shorter
   document's tokens (containment) and ``min_coverage`` of the longer one's
   (so a short brief quoted inside several roundups cannot chain them).
   ``align_pairs`` computes exactly that for thousands of pairs per numpy
   pass; ``verify`` (one pair through ``scoring.align``) is its reference.
   The answer depends only on the two documents' tokens, so documents with
   identical tokens (verbatim reprints) share a content class and each
   distinct (short, long) pair of contents is aligned once
   (``align_pairs_distinct``); every candidate pair still gets its edge.
5. Connected components of the verified pairs are the clusters
   (``label_components``, whole-array hooking and pointer jumping, here and on
   the Spark driver up to ``DRIVER_EDGES`` edges, else large-star/small-star).
   The representative is the longest member (most tokens), ties to the
   earliest.

Documents are numbered by position: ``file_no << 40 | record_no``, so the
output order and duplicate-id resolution (first occurrence wins) are the same
in every engine.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import itertools
import json
import logging
import mmap
import multiprocessing
import multiprocessing.pool
import os
import signal
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from wiretrace.config import MatchSettings, Settings
from wiretrace.pipeline import TextPipeline
from wiretrace.scoring import ScoringParams, align
from wiretrace.shingling import I64, U32, U64, shingle_hashes, sorted_unique

log = logging.getLogger(__name__)

FILE_SHIFT = 40
RECORD_MASK = (1 << FILE_SHIFT) - 1
CHUNK = 2000  # documents per worker task: numpy batches, few pickles
PART_BITS = 4  # band keys are paired in 2**PART_BITS parts, in parallel


@dataclass(frozen=True)
class DedupParams:
    """What makes two documents copies; recorded in summary.json."""

    threshold: float = 0.8  # containment of the shorter document in the longer
    min_coverage: float = 0.5  # ...and share of the longer document covered
    max_bucket: int = 50  # buckets larger than this give star pairs only
    id_field: str = "id"
    text_field: str = "text"


@dataclass(frozen=True, slots=True)
class Skipped:
    file: str
    record: int
    id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Edge:
    a: int  # doc keys, a < b
    b: int
    containment: float  # of the shorter document in the longer
    coverage: float  # of the longer document
    jaccard: float


@dataclass
class DedupResult:
    clusters: int
    documents: int
    skipped: Counter[str] = field(default_factory=Counter)
    candidate_pairs: int = 0
    verified_pairs: int = 0
    seconds: float = 0.0


# -- the shared core ---------------------------------------------------------


def scoring_params(settings: Settings) -> ScoringParams:
    """ScoringParams from the match settings, whatever fields the two share."""
    names = {f.name for f in dataclasses.fields(ScoringParams)}
    values = {f.name: getattr(settings.match, f.name) for f in dataclasses.fields(MatchSettings) if f.name in names}
    return ScoringParams(shingle_size=settings.index.shingle_size, **values)


def parse_record(payload: Any, params: DedupParams) -> tuple[str, str] | str:
    """(id, text) of one record (a JSON line or a mapping), or why it is skipped."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError:
            return "not JSON"
    if not isinstance(payload, dict):
        return "not a JSON object"
    doc_id, text = payload.get(params.id_field), payload.get(params.text_field)
    if doc_id is None or doc_id == "" or isinstance(doc_id, dict | list):
        return "no id"
    if text is None:
        return "no text"
    if not isinstance(text, str):
        return "text is not a string"
    if not text.strip():
        return "empty text"
    return str(doc_id), text


def _part(bands: U64) -> np.ndarray:
    """Which part of the key space a band key is in (its top PART_BITS bits)."""
    return (bands >> np.uint64(64 - PART_BITS)).astype(np.uint8)


def _offsets(sizes: np.ndarray) -> I64:
    return np.concatenate(([0], np.cumsum(sizes, dtype=np.int64)))


@dataclass
class Printed:
    """Prints of many documents in flat arrays: cheap to pickle between processes and to concatenate.

    Document i has token hashes ``tokens[toff[i]:toff[i+1]]``. Its window band
    keys are the ``bands`` entries whose ``owner`` is i; entries are grouped by
    part of the key space (``bands[poff[p]:poff[p+1]]``, owners ascending in
    each), so buckets can be formed part by part in parallel without a global
    sort. A document may list a key twice (repeated text); pairing ignores it.
    """

    keys: I64  # doc keys (file_no << 40 | record_no)
    ids: list[str]
    tokens: U32
    toff: I64
    bands: U64
    owner: I64
    poff: I64

    @staticmethod
    def build(keys: I64, ids: list[str], tokens: U32, toff: I64, bands: U64, owner: I64) -> Printed:
        part = _part(bands)
        order = np.argsort(part, kind="stable")
        poff = _offsets(np.bincount(part, minlength=1 << PART_BITS))
        return Printed(keys, ids, tokens, toff, bands[order], owner[order], poff)

    def select(self, mask: np.ndarray) -> Printed:
        """The documents where `mask` is True."""
        nt = np.diff(self.toff)
        keep = mask[self.owner]
        return Printed.build(
            self.keys[mask],
            [d for d, m in zip(self.ids, mask.tolist(), strict=True) if m],
            self.tokens[np.repeat(mask, nt)],
            _offsets(nt[mask]),
            self.bands[keep],
            (np.cumsum(mask) - 1)[self.owner[keep]],
        )

    @staticmethod
    def concat(parts: list[Printed]) -> Printed:
        """All documents of `parts`, in order."""
        doc_base = _offsets(np.array([len(p.ids) for p in parts], dtype=np.int64))
        bands: list[U64] = [np.empty(0, np.uint64)]
        owner: list[I64] = [np.empty(0, np.int64)]
        sizes = np.zeros(1 << PART_BITS, dtype=np.int64)
        for q in range(1 << PART_BITS):
            for base, p in zip(doc_base.tolist(), parts, strict=False):
                lo, hi = int(p.poff[q]), int(p.poff[q + 1])
                bands.append(p.bands[lo:hi])
                owner.append(p.owner[lo:hi] + base)
                sizes[q] += hi - lo
        return Printed(
            np.concatenate([p.keys for p in parts] or [np.empty(0, np.int64)]),
            [i for p in parts for i in p.ids],
            np.concatenate([p.tokens for p in parts] or [np.empty(0, np.uint32)]),
            _offsets(np.concatenate([np.diff(p.toff) for p in parts] or [np.empty(0, np.int64)])),
            np.concatenate(bands),
            np.concatenate(owner),
            _offsets(sizes),
        )

    def docs(self) -> Iterator[tuple[int, str, U32, U64]]:
        """(key, id, token hashes, distinct band keys) of each document."""
        order = np.lexsort((self.bands, self.owner))
        b, o = self.bands[order], self.owner[order]
        keep = np.ones(b.size, dtype=bool)
        keep[1:] = (b[1:] != b[:-1]) | (o[1:] != o[:-1])
        b, boff = b[keep], _offsets(np.bincount(o[keep], minlength=len(self.ids)))
        for i, key in enumerate(self.keys.tolist()):
            yield key, self.ids[i], self.tokens[self.toff[i] : self.toff[i + 1]], b[boff[i] : boff[i + 1]]


def print_flat(pipeline: TextPipeline, keys: list[int], ids: list[str], texts: list[str]) -> tuple[Printed, list[int]]:
    """Prints of the texts with at least one shingle window, and the positions of those without."""
    tokens, toff, bands, boff = pipeline.window_prints(texts)
    nb = np.diff(boff)
    good = nb > 0
    owner = np.repeat(np.arange(len(texts), dtype=np.int64), nb)
    printed = Printed.build(np.asarray(keys, dtype=np.int64), ids, tokens, toff, bands, owner)
    return (printed if good.all() else printed.select(good)), np.flatnonzero(~good).tolist()


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
    """Is the pair a duplicate? Aligns the shorter document against the longer one."""
    na, nb = int(tokens_a.size), int(tokens_b.size)
    short, long_ = (tokens_a, tokens_b) if (na, key_a) <= (nb, key_b) else (tokens_b, tokens_a)
    if short.size < dp.min_coverage * long_.size:  # cannot reach min_coverage
        return None
    bigrams = shingle_hashes(short, 2)
    k = sp.shingle_size
    al = align(shingle_hashes(short, k), bigrams, np.ones(bigrams.size), shingle_hashes(long_, k), int(long_.size), sp)
    if al is None or al.containment < dp.threshold or al.coverage < dp.min_coverage:
        return None
    a, b = min(key_a, key_b), max(key_a, key_b)
    return Edge(a, b, round(al.containment, 4), round(al.coverage, 4), round(al.jaccard, 4))


def verify_many(pairs: list[tuple[int, U32, int, U32]], sp: ScoringParams, dp: DedupParams) -> list[Edge]:
    """`verify` of many (key a, tokens a, key b, tokens b), through `align_pairs`; edges in pair order."""
    if not pairs:
        return []
    keys = np.array([k for a, _, b, _ in pairs for k in (a, b)], dtype=np.int64)
    docs = [t for _, ta, _, tb in pairs for t in (ta, tb)]
    toff = _offsets(np.array([d.size for d in docs], dtype=np.int64))
    corpus = Corpus.of(keys, np.concatenate(docs).astype(np.uint32, copy=False), toff, sp.shingle_size)
    both = np.arange(0, 2 * len(pairs), 2, dtype=np.int64)
    return align_pairs(corpus, both, both + 1, sp, dp)


def _gather(starts: I64, sizes: I64) -> tuple[I64, I64]:
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


def align_pairs(corpus: Corpus, left: I64, right: I64, sp: ScoringParams, dp: DedupParams) -> list[Edge]:
    """`align_pairs_arrays` as `Edge` objects."""
    return align_pairs_arrays(corpus, left, right, sp, dp).edges()


def align_pairs_arrays(corpus: Corpus, left: I64, right: I64, sp: ScoringParams, dp: DedupParams) -> EdgeArrays:
    """`verify` of the pairs (left[i], right[i]) of `corpus` documents, many pairs per numpy pass.

    The same steps and numbers as ``scoring.align`` with unit bigram weights,
    done for a whole batch at once (every array carries its pair number in its
    top bits, so one sort and one search serve every pair):

    * each story (longer document) shingle becomes ``pair | hash | position``;
      after one sort, a search for ``pair | hash | 0`` finds the first story
      position of each article (shorter document) shingle, as the stable sort in
      `align` does;
    * matched positions are broken into segments on a new pair, an article jump
      or a diagonal shift over ``max_gap``;
    * a segment is a passage when the distinct bigrams under its shingles reach
      ``min_passage_weight`` (unit weights: their count);
    * containment and coverage are the lengths of the unions of the passages'
      token ranges, and Jaccard the distinct shared shingles, as in `align`.

    Pairs that cannot pass are dropped on the way (size ratio first); the edges
    come out in the order of the pairs.
    """
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    short, long_ = orient(corpus, left, right)
    ok, containment, coverage, jaccard = align_oriented(corpus, short, long_, sp, dp)
    x, y = corpus.keys[short[ok]], corpus.keys[long_[ok]]
    return EdgeArrays(np.minimum(x, y), np.maximum(x, y), containment, coverage, jaccard)


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
    s_idx, s_off = _gather(corpus.toff[long_], m_l)
    a_idx, a_off = _gather(corpus.toff[short], m_s)
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
    b_idx, _ = _gather(corpus.toff[short[h_pair]] + first_pos, count)
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


def cluster_record(
    members: list[int], ids: dict[int, str], n_tokens: dict[int, int], edges: list[Edge]
) -> dict[str, Any]:
    """One line of clusters.jsonl (cluster_id is filled in by the writer)."""
    members = sorted(members)
    rep = min(members, key=lambda m: (-n_tokens[m], m))
    return {
        "members": [ids[m] for m in members],
        "representative": ids[rep],
        "pairs": [
            {"a": ids[e.a], "b": ids[e.b], "containment": e.containment, "coverage": e.coverage, "jaccard": e.jaccard}
            for e in sorted(edges, key=lambda e: (e.a, e.b))
        ],
    }


def _pair_json(a: str, b: str, containment: float, coverage: float, jaccard: float) -> str:
    """One entry of a cluster's "pairs", as json.dumps writes it (floats by repr, as json does)."""
    return f'{{"a": {a}, "b": {b}, "containment": {containment!r}, "coverage": {coverage!r}, "jaccard": {jaccard!r}}}'


def write_clusters(
    writer: OutputWriter, keys: I64, ids: list[str], n_tokens: I64, edges: EdgeArrays, include_singletons: bool
) -> None:
    """The clusters of documents `keys` (ascending) joined by `edges`, in root order, as `cluster_record`s.

    Whole-array steps (components, grouping) and lines rendered straight to
    text, identical to ``json.dumps(cluster_record(...))``: the per-edge and
    per-document Python objects were most of this step on a million articles.
    """
    n = int(keys.size)
    pa, pb = np.searchsorted(keys, edges.a), np.searchsorted(keys, edges.b)
    root = label_components(n, pa, pb)
    if include_singletons:
        nodes = np.arange(n, dtype=np.int64)
    else:  # only documents with an edge can be in a cluster of two or more
        nodes = sorted_unique(np.concatenate((pa, pb)))
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
    quoted: dict[int, str] = {}

    def q(i: int) -> str:
        text = quoted.get(i)
        if text is None:
            text = quoted[i] = json.dumps(ids[i], ensure_ascii=False)
        return text

    members_all = by_root.tolist()
    e = 0
    for lo, hi in itertools.pairwise(m_cut):
        members = members_all[lo:hi]
        r = members[0]
        pairs: list[str] = []
        while e < len(e_root) and e_root[e] == r:
            pairs.append(_pair_json(q(e_a[e]), q(e_b[e]), e_c[e], e_v[e], e_j[e]))
            e += 1
        rep = min(members, key=lambda m: (-sizes[m], m))
        writer.cluster_line(len(members), [q(m) for m in members], q(rep), pairs)


class OutputWriter:
    """clusters.jsonl, skipped.jsonl and summary.json in the output directory."""

    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self._clusters = (out_dir / "clusters.jsonl").open("w", encoding="utf-8")
        self._skipped = (out_dir / "skipped.jsonl").open("w", encoding="utf-8")
        self.sizes: Counter[int] = Counter()
        self.skips: Counter[str] = Counter()
        self.n_clusters = 0

    def skip(self, s: Skipped) -> None:
        self.skips[s.reason] += 1
        if self.skips[s.reason] <= 5:
            log.warning("skipped %s record %d (id %s): %s", s.file, s.record, s.id, s.reason)
        self._skipped.write(json.dumps(dataclasses.asdict(s), ensure_ascii=False) + "\n")

    def cluster(self, record: dict[str, Any]) -> None:
        self.sizes[len(record["members"])] += 1
        self._clusters.write(json.dumps({"cluster_id": self.n_clusters, **record}, ensure_ascii=False) + "\n")
        self.n_clusters += 1

    def cluster_line(self, size: int, members: list[str], representative: str, pairs: list[str]) -> None:
        """`cluster` of a record already rendered: JSON-quoted member ids and representative, pair objects."""
        self.sizes[size] += 1
        self._clusters.write(
            f'{{"cluster_id": {self.n_clusters}, "members": [{", ".join(members)}], '
            f'"representative": {representative}, "pairs": [{", ".join(pairs)}]}}\n'
        )
        self.n_clusters += 1

    def finish(self, documents: int, extra: dict[str, Any]) -> dict[str, Any]:
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


# -- reading -----------------------------------------------------------------


def input_kind(path: str) -> str:
    name = path.lower()
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith(".jsonl") or name.endswith(".jsonl.gz") or name.endswith(".json") or name.endswith(".json.gz"):
        return "jsonl"
    raise ValueError(f"{path}: expected .jsonl, .jsonl.gz or .parquet")


def _open(path: str) -> IO[str]:
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def read_records(paths: Sequence[str], params: DedupParams) -> Iterator[tuple[int, str, Any]]:
    """(doc key, file, payload) of every record: a JSON line, or a {id, text} mapping from Parquet."""
    for file_no, path in enumerate(paths):
        yield from _file_records(file_no, path, params)


def _file_records(file_no: int, path: str, params: DedupParams) -> Iterator[tuple[int, str, Any]]:
    base = file_no << FILE_SHIFT
    if input_kind(path) == "jsonl":
        with _open(path) as fh:
            yield from _lines(base, path, fh)
    else:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        pf = pq.ParquetFile(path)
        names = set(pf.schema_arrow.names)
        cols = [c for c in (params.id_field, params.text_field) if c in names]
        row = 0
        for batch in pf.iter_batches(columns=cols, batch_size=4096):
            for rec in batch.to_pylist():
                yield base | row, path, rec
                row += 1


def _lines(base: int, path: str, lines: Iterable[str]) -> Iterator[tuple[int, str, Any]]:
    for line_no, line in enumerate(lines):
        if line.strip():
            yield base | line_no, path, line


RANGE_BYTES = 4 << 20  # bytes of plain JSONL per print task (~1,600 news articles)

# A print task: ("records", records) read by the parent (gzip, Parquet), or ("range", file_no, path, lo, hi),
# bytes of a plain JSONL file that the worker reads itself, so the parent never handles the text.
Task = tuple[Any, ...]


def _tasks(paths: Sequence[str], params: DedupParams, range_bytes: int = RANGE_BYTES) -> Iterator[Task]:
    """Print tasks in input order; plain JSONL is cut into byte ranges that end on a line break."""
    for file_no, path in enumerate(paths):
        if input_kind(path) == "jsonl" and not path.lower().endswith(".gz"):
            size = os.path.getsize(path)
            if size == 0:
                continue
            with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                lo = 0
                while lo < size:
                    cut = data.find(b"\n", lo + range_bytes) if lo + range_bytes < size else -1
                    hi = size if cut < 0 else cut + 1
                    yield ("range", file_no, path, lo, hi)
                    lo = hi
        else:
            for chunk in _chunks(_file_records(file_no, path, params), CHUNK):
                yield ("records", chunk)


# -- the local engine --------------------------------------------------------

_PIPELINE: TextPipeline | None = None
_CORPUS: Corpus | None = None
_CHUNKS: list[Printed] = []  # the print chunks, inherited by the forked pair workers


def _print_chunk(args: tuple[Settings, DedupParams, list[tuple[int, str, Any]]]) -> tuple[Printed, list[Skipped]]:
    """Worker: parse and print a chunk of records; returns flat arrays, not one object per document."""
    global _PIPELINE
    settings, params, chunk = args
    if _PIPELINE is None:
        _PIPELINE = TextPipeline(settings.index)
    keys: list[int] = []
    paths: list[str] = []
    ids: list[str] = []
    texts: list[str] = []
    skipped: list[Skipped] = []
    for key, path, payload in chunk:
        parsed = parse_record(payload, params)
        if isinstance(parsed, str):
            skipped.append(Skipped(path, key & RECORD_MASK, _raw_id(payload, params), parsed))
        else:
            keys.append(key)
            paths.append(path)
            ids.append(parsed[0])
            texts.append(parsed[1])
    printed, short = print_flat(_PIPELINE, keys, ids, texts)
    for i in short:  # fewer words than one shingle: nothing to compare
        skipped.append(Skipped(paths[i], keys[i] & RECORD_MASK, ids[i], "too short"))
    return printed, skipped


def _print_task(args: tuple[Settings, DedupParams, Task]) -> tuple[Printed, list[Skipped], int, int]:
    """Worker: `_print_chunk` of one task, and (file number, lines read) when it read a byte range itself.

    Keys and skipped record numbers of a range count lines from its start; the
    parent, which sees the ranges in order, adds the lines of the ones before.
    The bytes are decoded and split into lines as ``_open`` reads the whole file
    (UTF-8 with replacement, universal newlines): a range ends on "\\n", which is
    never inside a UTF-8 sequence or between "\\r" and "\\n".
    """
    settings, params, task = args
    if task[0] == "records":
        return (*_print_chunk((settings, params, task[1])), -1, 0)
    _, file_no, path, lo, hi = task
    with open(path, "rb") as fh:
        fh.seek(lo)
        text = fh.read(hi - lo).decode("utf-8", errors="replace")
    lines = io.StringIO(text, newline=None).readlines()
    printed, skipped = _print_chunk((settings, params, list(_lines(file_no << FILE_SHIFT, path, lines))))
    return printed, skipped, file_no, len(lines)


def _raw_id(payload: Any, params: DedupParams) -> str | None:
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError:
            return None
    value = payload.get(params.id_field) if isinstance(payload, dict) else None
    return None if value is None else str(value)


def _verify_chunk(args: tuple[ScoringParams, DedupParams, I64, I64]) -> Scores:
    """Worker: align oriented pairs (dense indices into the inherited _CORPUS); scores as arrays."""
    sp, dp, short, long_ = args
    assert _CORPUS is not None
    return align_oriented(_CORPUS, short, long_, sp, dp)


def _hash_docs(args: tuple[I64, int]) -> None:
    """Worker: shingle and bigram hashes of documents `docs` (dense indices), written into the shared
    _CORPUS arrays at their own positions; only documents with candidate pairs are ever read.

    The documents' tokens are gathered end to end and hashed in one go: a hash
    that runs into the next gathered document lands on a position past the
    document's last shingle (or bigram), which nothing reads.
    """
    docs, k = args
    assert _CORPUS is not None
    toff = _CORPUS.toff
    idx, _ = _gather(toff[docs], toff[docs + 1] - toff[docs])
    tokens = _CORPUS.tokens[idx]
    for out, width in ((_CORPUS.shingles, k), (_CORPUS.bigrams, 2)):
        hashed = blocked_shingle_hashes(tokens, width)
        at = idx[: hashed.size]
        inside = at < out.size
        out[at[inside]] = hashed[inside]


def _shared_array(size: int, dtype: type[np.generic]) -> np.ndarray:
    """A zeroed array in anonymous shared memory: what forked workers write, the parent sees."""
    nbytes = max(1, size * np.dtype(dtype).itemsize)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype, count=size)


def _pairs_part(args: tuple[int, int]) -> I64:
    """Worker: candidate pairs (i << 32 | j) of the buckets of one part of the key space, gathered from the
    inherited print chunks here rather than concatenated in the parent (which would do it alone)."""
    part, max_bucket = args
    bands: list[U64] = [np.empty(0, np.uint64)]
    docs: list[I64] = [np.empty(0, np.int64)]
    base = 0
    for p in _CHUNKS:
        lo, hi = int(p.poff[part]), int(p.poff[part + 1])
        bands.append(p.bands[lo:hi])
        docs.append(p.owner[lo:hi] + base)
        base += len(p.ids)
    left, right = candidate_pairs(np.concatenate(docs), np.concatenate(bands), max_bucket)
    return np.asarray(left << 32 | right, dtype=np.int64)


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


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_POOL_GRACE_S = 30.0  # for workers to stop after their last task


def _worker_start() -> None:
    """A forked worker must die on the SIGTERM with which ``Pool`` ends it, even
    when the parent installed a handler (a server's graceful drain, a test
    runner's): an inherited handler would keep it alive and the pool's join
    would wait forever."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def _fork_pool(workers: int) -> Iterator[multiprocessing.pool.Pool]:
    """A pool of forked workers that cannot hang the caller when it ends.

    ``Pool.__exit__`` terminates with SIGTERM and joins. A worker forked while
    another thread of the parent held a lock (Spark's py4j threads, a test
    runner's) can be stuck before it resets SIGTERM, and the join then waits
    forever (seen under load in the test suite). So a finished pool is closed
    the graceful way (each worker reads its stop signal), and a worker still
    alive after a grace period, which never got to read it, is killed.
    """
    pool = multiprocessing.get_context("fork").Pool(workers, _worker_start)
    try:
        yield pool
    except BaseException:
        pool.terminate()
        raise
    pool.close()
    deadline = time.monotonic() + _POOL_GRACE_S
    for proc in list(getattr(pool, "_pool", [])):
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            log.warning("dedup worker %s did not stop; killing it", proc.pid)
            proc.kill()
    pool.join()


def run_local(
    paths: Sequence[str],
    out_dir: Path,
    params: DedupParams,
    settings: Settings | None = None,
    *,
    workers: int | None = None,
    include_singletons: bool = False,
    progress: bool = True,
    range_bytes: int = RANGE_BYTES,
) -> dict[str, Any]:
    """Cluster the records of `paths` on this machine, one process per core (plain JSONL is read by the
    workers, `range_bytes` at a time)."""
    global _CORPUS, _CHUNKS
    settings = settings or Settings.load()
    sp = scoring_params(settings)
    workers = workers or os.cpu_count() or 1
    started = time.perf_counter()
    writer = OutputWriter(out_dir)
    chunks: list[Printed] = []
    seen: set[str] = set()
    tasks = ((settings, params, t) for t in _tasks(paths, params, range_bytes))
    lines_before = [0] * len(paths)  # lines of the byte ranges already printed, per file
    with _fork_pool(workers) as pool, tqdm(desc="print", unit="doc", disable=not progress) as bar:
        for printed, skipped, file_no, n_lines in pool.imap(_print_task, tasks):
            if file_no >= 0:  # a byte range: its keys count lines from its start
                shift = lines_before[file_no]
                printed.keys += shift
                skipped = [dataclasses.replace(s, record=s.record + shift) for s in skipped]
                lines_before[file_no] += n_lines
            n_skipped = len(skipped)
            fresh = np.ones(len(printed.ids), dtype=bool)
            for i, doc_id in enumerate(printed.ids):
                if doc_id in seen:
                    key = int(printed.keys[i])
                    skipped.append(Skipped(paths[key >> FILE_SHIFT], key & RECORD_MASK, doc_id, "duplicate id"))
                    fresh[i] = False
                else:
                    seen.add(doc_id)
            # In record order (as the Spark engine writes them), whatever the task boundaries.
            for s in sorted(skipped, key=lambda s: s.record):
                writer.skip(s)
            chunks.append(printed if fresh.all() else printed.select(fresh))
            bar.update(len(printed.ids) + n_skipped)
    phases = {"print": time.perf_counter() - started}
    keys_arr = np.concatenate([p.keys for p in chunks] or [np.empty(0, np.int64)])
    ids = [i for p in chunks for i in p.ids]
    toff = _offsets(np.concatenate([np.diff(p.toff) for p in chunks] or [np.empty(0, np.int64)]))
    tokens = np.concatenate([p.tokens for p in chunks] or [np.empty(0, np.uint32)])
    n = len(ids)
    # Buckets are formed part by part of the key space, in parallel by the forked workers, from the
    # chunks they inherit; then they hash the shingles and bigrams of the documents with pairs (a
    # third of them at 1M) into shared memory, once for all pairs.
    _CHUNKS = chunks
    k = sp.shingle_size
    n_tok = int(tokens.size)
    _CORPUS = Corpus(
        keys_arr,
        tokens,
        toff,
        _shared_array(max(n_tok - k + 1, 0), np.uint32),
        _shared_array(max(n_tok - 1, 0), np.uint32),
    )
    found: list[Scores] = []
    step = 2000
    with _fork_pool(workers) as pool:
        parts = pool.map(_pairs_part, [(q, params.max_bucket) for q in range(1 << PART_BITS)])
        _CHUNKS = []
        del chunks
        code = sorted_unique(np.concatenate([np.empty(0, np.int64), *parts]))
        del parts
        left, right = code >> 32, code & 0xFFFFFFFF
        paired = sorted_unique(np.concatenate((left, right)))
        pool.map(_hash_docs, [(docs, k) for docs in np.array_split(paired, 4 * workers)])
        phases["pairs"] = time.perf_counter() - started
        # Verbatim reprints are common: each distinct (short, long) pair of contents is aligned once.
        short, long_ = orient(_CORPUS, left, right)
        cls = content_classes(_CORPUS, paired)
        ds, dl, inverse = distinct_pairs(cls, short, long_)
        del cls
        jobs = ((sp, params, ds[i : i + step], dl[i : i + step]) for i in range(0, ds.size, step))
        with tqdm(total=int(ds.size), desc="verify", unit="pair", disable=not progress) as bar:
            for scores, lo in zip(pool.imap(_verify_chunk, jobs), range(0, ds.size, step), strict=True):
                found.append((scores[0] + lo, *scores[1:]))
                bar.update(min(step, int(ds.size) - lo))
    edges = expand_scores(_CORPUS, short, long_, inverse, int(ds.size), concat_scores(found))
    del found
    _CORPUS = None
    phases["verify"] = time.perf_counter() - started
    write_clusters(writer, keys_arr, ids, np.diff(toff), edges, include_singletons)
    seconds = time.perf_counter() - started
    return writer.finish(
        n,
        {
            "engine": "local",
            "workers": workers,
            "candidate_pairs": int(left.size),
            "verified_pairs": len(edges),
            "aligned_pairs": int(ds.size),  # distinct pairs of contents among the candidates
            "params": dataclasses.asdict(params),
            "seconds": round(seconds, 3),
            # Seconds since the start at the end of each step (why a run is slow).
            "phase_ends": {name: round(t, 3) for name, t in phases.items()},
            "documents_per_second": round((n + sum(writer.skips.values())) / seconds, 1) if seconds else None,
        },
    )


# -- against mode ------------------------------------------------------------


def run_against(
    paths: Sequence[str],
    out_dir: Path,
    params: DedupParams,
    target: str,
    settings: Settings | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Tag every archive article with its wire sources instead of clustering.

    `target` is a running server (HOST:PORT, through the gRPC client), a
    ``redis://`` store, or an index directory (the embedded store, opened here).
    Writes ``tags.jsonl``: id, verdict, original_fraction, sources.
    """
    from wiretrace.engine import Detector, MatchResult

    settings = settings or Settings.load()
    started = time.perf_counter()
    writer = OutputWriter(out_dir)
    articles: list[tuple[str, str]] = []

    def records() -> Iterator[tuple[str, str]]:
        for key, path, payload in read_records(paths, params):
            parsed = parse_record(payload, params)
            if isinstance(parsed, str):
                writer.skip(Skipped(path, key & RECORD_MASK, _raw_id(payload, params), parsed))
            else:
                yield parsed

    results: Iterator[tuple[str, MatchResult]]
    closer: Any
    if Path(target).is_dir() or target.startswith(("redis://", "rediss://", "unix://")):
        if target.startswith(("redis://", "rediss://", "unix://")):
            from wiretrace.redis_backend import open_redis_backend

            detector = Detector(settings, open_redis_backend(target, settings.index.fingerprint()))
        else:
            settings = dataclasses.replace(settings, server=dataclasses.replace(settings.server, data_dir=Path(target)))
            detector = Detector.open(settings)
        results = ((doc_id, detector.match(text)) for doc_id, text in records())
        closer = detector
    else:
        from wiretrace.client.client import MatchQuery, WiretraceClient

        client = WiretraceClient(target)
        results = client.match_stream(MatchQuery(text, request_id=doc_id) for doc_id, text in records())
        closer = client
    counts: Counter[str] = Counter()
    try:
        with (out_dir / "tags.jsonl").open("w", encoding="utf-8") as fh:
            for doc_id, res in tqdm(results, desc="match", unit="doc", disable=not progress):
                counts[res.verdict.name] += 1
                sources = [
                    {
                        "story_id": m.story_id,
                        "containment": m.containment,
                        "coverage": m.coverage,
                        "verdict": m.verdict.name,
                    }
                    for m in res.matches
                ]
                line = {"id": doc_id, "verdict": res.verdict.name, "original_fraction": round(res.original_fraction, 4)}
                fh.write(json.dumps({**line, "sources": sources}, ensure_ascii=False) + "\n")
                articles.append((doc_id, res.verdict.name))
    finally:
        closer.close()
    seconds = time.perf_counter() - started
    return writer.finish(
        len(articles),
        {"engine": "against", "target": target, "verdicts": dict(sorted(counts.items())), "seconds": round(seconds, 3)},
    )
