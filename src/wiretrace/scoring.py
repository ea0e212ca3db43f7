"""Candidate verification: exact shingle alignment, passages, scores, verdict.

LSH only proposes candidates; every number the API returns is computed here
from the exact shingle sequences of the article and of each candidate story:

* matched shingles are chained into passages along diagonals (article
  position minus story position), so reordered paragraphs, dropped sentences
  and merged blocks become separate passages, and OCR noise or a substituted
  word only leaves a small gap inside one;
* a passage counts only if its distinct word pairs carry enough weight by
  inverse document frequency, so stock phrases ("for the year ended", "in a
  filing with the Securities and Exchange Commission") and degenerate repeated
  text cannot make a match, in any language, without stop-word lists;
* containment is the share of article tokens inside passages, coverage the
  share of story tokens, both over prose tokens (boilerplate is already gone);
* a rewrite (same facts, reworded sentences) leaves few passages but keeps
  its source's rarer word pairs: the IDF-weighted share of the article's
  bigrams found in the story measures that, and stands in for containment
  when it is the larger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numba
import numpy as np

from wiretrace.shingling import I64, U32, sorted_unique


class Verdict(IntEnum):
    """Mirrors wiretrace.v1.Verdict."""

    UNSPECIFIED = 0
    UNRELATED = 1
    PARTIAL = 2
    DERIVED = 3
    VERBATIM = 4


@dataclass(frozen=True, slots=True)
class ScoringParams:
    shingle_size: int
    max_gap: int  # tokens a passage may skip (noise, a changed word)
    min_passage_weight: float  # IDF weight of a passage's distinct bigrams for it to count
    min_match_tokens: int  # tokens in passages for a story to be a match at all
    rewrite_containment: float  # IDF-weighted bigram share for a rewrite
    min_containment: float  # ... and share of the article or of the story
    derived_containment: float  # article share from wire for DERIVED
    verbatim_threshold: float  # containment, coverage and density for VERBATIM


@dataclass(frozen=True, slots=True)
class Passage:
    """Token ranges [start, end) in article and story, and matched density."""

    article_start: int
    article_end: int
    story_start: int
    story_end: int
    similarity: float


@dataclass(frozen=True, slots=True)
class Alignment:
    """How one article relates to one story."""

    passages: tuple[Passage, ...]
    article_mask: np.ndarray  # bool per article token: inside a passage
    containment: float
    coverage: float
    jaccard: float
    density: float  # matched shingles / shingles spanned, over all passages

    @property
    def matched_tokens(self) -> int:
        return int(self.article_mask.sum())


def _coverage_mask(n: int, starts: I64, ends: I64) -> np.ndarray:
    diff = np.zeros(n + 1, dtype=np.int32)
    np.add.at(diff, starts, 1)
    np.add.at(diff, ends, -1)
    return np.cumsum(diff[:-1]) > 0


def _find(table: U32, values: U32) -> np.ndarray:
    """Index of each value in `table` (sorted, distinct), or -1.

    The tables here are an article's few hundred distinct hashes and the values
    the tens of thousands of its candidates': ``searchsorted`` pays a branch
    miss per step for such unsorted needles (~0.1 µs a value). The hashes are
    uniform, so their top bits pick a slot that mostly holds one table entry
    or none, and one compiled pass settles every value.
    """
    if table.size == 0 or values.size == 0:
        return np.full(values.size, -1, dtype=np.int64)
    if table.dtype != np.uint32 or values.dtype != np.uint32:  # not 32-bit hashes: search
        idx = np.minimum(np.searchsorted(table, values), table.size - 1)
        return np.where(table[idx] == values, idx, -1)
    bits = min(24, int(table.size).bit_length() + 3)  # 8-16 slots per entry
    shift = 32 - bits
    slots = np.zeros((1 << bits) + 1, dtype=np.int64)
    np.cumsum(np.bincount(table >> np.uint32(shift), minlength=1 << bits), out=slots[1:])
    return _find_in_slots(np.ascontiguousarray(table), np.ascontiguousarray(values), slots, shift)


@numba.njit(
    "int64[::1](uint32[::1], uint32[::1], int64[::1], int64)",
    cache=True,  # compiled once per install
    nogil=True,  # other threads run meanwhile
    boundscheck=False,
)
def _find_in_slots(table: U32, values: U32, slots: I64, shift: int) -> I64:
    """`_find` with the table's entries grouped by their top bits: slot s holds table[slots[s]:slots[s+1]]."""
    found = np.full(values.size, -1, dtype=np.int64)
    for i in range(values.size):
        v = values[i]
        s = v >> np.uint32(shift)
        for pos in range(slots[s], slots[s + 1]):
            if table[pos] == v:
                found[i] = pos
                break
    return found


def align(
    article: U32,
    article_bigrams: U32,
    bigram_weights: np.ndarray,
    story: U32,
    n_story_tokens: int,
    p: ScoringParams,
) -> Alignment | None:
    """Align article shingles with story shingles; None when no passage qualifies.

    `article_bigrams[i]` is the bigram starting at article token i and
    `bigram_weights` its informativeness, so a passage's evidence is the
    weight of the distinct bigrams inside its matched shingles.
    """
    return align_many(article, article_bigrams, bigram_weights, [story], [n_story_tokens], p)[0]


def align_many(
    article: U32,
    article_bigrams: U32,
    bigram_weights: np.ndarray,
    stories: Sequence[U32],
    n_story_tokens: Sequence[int],
    p: ScoringParams,
    wanted: np.ndarray | None = None,
    min_shared: int = 1,
) -> list[Alignment | None]:
    """`align` of one article with many stories (those `wanted`; None for the rest), in one pass.

    Stories holding fewer than `min_shared` distinct article shingles get None
    too, as if not wanted (counted here, where the matching finds them anyway).

    Verifying ~80 candidates one by one cost ~25 numpy calls each; here the
    matching, chaining and passage weighing of all of them are a fixed number
    of calls over their concatenated shingles, and only stories with a
    qualifying passage are visited one at a time. Results equal `align`'s:

    * each article shingle is paired with its first occurrence in the story;
    * matches are chained along diagonals, breaking where the article jumps
      more than ``max_gap`` ahead or the diagonal shifts by more than that;
    * a chain is a passage when its distinct bigrams weigh ``min_passage_weight``.
    """
    n = len(stories)
    out: list[Alignment | None] = [None] * n
    k = p.shingle_size
    if article.size == 0 or n == 0:
        return out
    todo = [i for i in range(n) if stories[i].size and (wanted is None or wanted[i])]
    if not todo:
        return out
    # Article shingles and bigrams by distinct value.
    a_uniq, a_inv = np.unique(article, return_inverse=True)
    by_value = np.argsort(a_inv, kind="stable")  # article positions grouped by value, ascending within
    per_value = np.bincount(a_inv, minlength=a_uniq.size)
    value_end = np.cumsum(per_value)
    b_uniq, b_first, b_inv = np.unique(article_bigrams, return_index=True, return_inverse=True)
    b_weight = bigram_weights[b_first]

    # Story shingles that occur in the article: (story, value, first position in the story).
    sizes = np.array([stories[i].size for i in todo], dtype=np.int64)
    flat = np.concatenate([stories[i] for i in todo])
    owner = np.repeat(np.arange(len(todo), dtype=np.int64), sizes)
    where = _find(a_uniq, flat)
    hit = np.flatnonzero(where >= 0)
    if hit.size == 0:
        return out
    pair = owner[hit] * a_uniq.size + where[hit]
    pair, first = np.unique(pair, return_index=True)  # first occurrence: the flat order is positional
    shared = np.bincount(pair // a_uniq.size, minlength=len(todo))  # distinct article shingles per story
    if min_shared > 1:
        enough = shared[pair // a_uniq.size] >= min_shared
        if not enough.all():
            pair, first = pair[enough], first[enough]
            if pair.size == 0:
                return out
    p_owner = pair // a_uniq.size
    p_value = pair % a_uniq.size
    p_spos = hit[first] - (np.cumsum(sizes) - sizes)[p_owner]

    # Every article position holding each shared value, ordered by (story, article position).
    reps = per_value[p_value]
    starts = value_end[p_value] - reps
    total = int(reps.sum())
    offs = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(reps) - reps, reps)
    a_pos = by_value[np.repeat(starts, reps) + offs].astype(np.int64)
    own = np.repeat(p_owner, reps)
    s_pos = np.repeat(p_spos, reps)
    order = np.argsort(own * article.size + a_pos, kind="stable")
    a_pos, own, s_pos = a_pos[order], own[order], s_pos[order]

    # Chains: break at a new story, an article jump or a diagonal shift.
    diag = s_pos - a_pos
    brk = (np.diff(own) != 0) | (np.diff(a_pos) > p.max_gap) | (np.abs(np.diff(diag)) > p.max_gap)
    seg_lo = np.concatenate(([0], np.flatnonzero(brk) + 1))
    seg_hi = np.concatenate((seg_lo[1:], [a_pos.size]))
    seg_of = np.repeat(np.arange(seg_lo.size, dtype=np.int64), seg_hi - seg_lo)

    # Weight of each chain's distinct bigrams (those inside its matched shingles).
    covered = (a_pos[:, None] + np.arange(k - 1)[None, :]).reshape(-1)
    seg_bigram = sorted_unique(np.repeat(seg_of, k - 1) * b_uniq.size + b_inv[covered])
    weight = np.bincount(seg_bigram // b_uniq.size, weights=b_weight[seg_bigram % b_uniq.size], minlength=seg_lo.size)
    keep = weight >= p.min_passage_weight
    # Summed in another order than align's reference sum; settle near-ties with that sum.
    for s in np.flatnonzero(np.abs(weight - p.min_passage_weight) <= 1e-9 * max(1.0, p.min_passage_weight)).tolist():
        cov = (a_pos[seg_lo[s] : seg_hi[s], None] + np.arange(k - 1)[None, :]).reshape(-1)
        _, f = np.unique(article_bigrams[cov], return_index=True)
        keep[s] = float(bigram_weights[cov[f]].sum()) >= p.min_passage_weight
    segs = np.flatnonzero(keep)
    if segs.size == 0:
        return out
    s_min = np.minimum.reduceat(s_pos, seg_lo)
    s_max = np.maximum.reduceat(s_pos, seg_lo)

    n_article_tokens = article_bigrams.size + 1
    seg_story = own[seg_lo[segs]]
    for j in np.unique(seg_story).tolist():
        passages: list[Passage] = []
        a_lo: list[int] = []
        a_hi: list[int] = []
        s_lo: list[int] = []
        s_hi: list[int] = []
        matched = 0
        spanned = 0
        for s in segs[seg_story == j].tolist():
            lo, hi = int(seg_lo[s]), int(seg_hi[s])
            a0, a1 = int(a_pos[lo]), int(a_pos[hi - 1]) + k
            s0, s1 = int(s_min[s]), int(s_max[s]) + k
            span = a1 - a0 - k + 1
            passages.append(Passage(a0, a1, s0, s1, min(1.0, (hi - lo) / span)))
            a_lo.append(a0)
            a_hi.append(a1)
            s_lo.append(s0)
            s_hi.append(s1)
            matched += hi - lo
            spanned += span
        i = todo[j]
        n_story = int(n_story_tokens[i])
        article_mask = _coverage_mask(n_article_tokens, np.array(a_lo), np.array(a_hi))
        story_mask = _coverage_mask(n_story, np.array(s_lo), np.array(s_hi))
        inter = int(shared[j])
        union = a_uniq.size + sorted_unique(stories[i]).size - inter
        out[i] = Alignment(
            passages=tuple(passages),
            article_mask=article_mask,
            containment=float(article_mask.sum()) / max(1, n_article_tokens),
            coverage=float(story_mask.sum()) / max(1, n_story),
            jaccard=inter / union if union else 0.0,
            density=matched / spanned if spanned else 0.0,
        )
    return out


def qualifies(al: Alignment, p: ScoringParams) -> bool:
    """Is this enough shared text to call the story a source at all?"""
    return al.matched_tokens >= p.min_match_tokens and max(al.containment, al.coverage) >= p.min_containment


@dataclass(frozen=True, slots=True)
class Lexical:
    """Rewrite evidence: which article bigrams occur in the story, IDF-weighted."""

    share: float
    weight: float  # IDF weight of the distinct article bigrams found in the story
    article_mask: np.ndarray


def shared_terms(article_terms: U32, term_weights: np.ndarray, stories: list[U32]) -> tuple[np.ndarray, np.ndarray]:
    """For many stories at once: how many distinct article terms each contains,
    and their summed weight (one sort and one search for the whole batch)."""
    uniq, first = np.unique(article_terms, return_index=True)
    n = len(stories)
    if uniq.size == 0 or n == 0:
        return np.zeros(n, dtype=np.int64), np.zeros(n)
    flat = np.concatenate(stories)
    owner = np.repeat(np.arange(n, dtype=np.int64), [t.size for t in stories])
    idx = _find(uniq, flat)
    hit = idx >= 0
    pairs = sorted_unique(owner[hit] * uniq.size + idx[hit])
    whose = pairs // uniq.size
    counts = np.bincount(whose, minlength=n)
    weights = np.bincount(whose, weights=term_weights[first][pairs % uniq.size], minlength=n)
    return counts, weights


def lexical_overlap(article_bigrams: U32, bigram_weights: np.ndarray, story_bigrams: U32) -> Lexical:
    n_tokens = article_bigrams.size + 1
    story_sorted = np.sort(story_bigrams)
    idx = np.minimum(np.searchsorted(story_sorted, article_bigrams), max(story_sorted.size - 1, 0))
    present = story_sorted[idx] == article_bigrams if story_sorted.size else np.zeros(article_bigrams.size, bool)
    _, first = np.unique(article_bigrams, return_index=True)
    w = bigram_weights[first]
    total = float(w.sum())
    found = float(w[present[first]].sum())
    share = found / total if total > 0 else 0.0
    mask = np.zeros(n_tokens, dtype=bool)
    hit = np.flatnonzero(present)
    mask[hit] = True
    mask[hit + 1] = True
    return Lexical(share=share, weight=found, article_mask=mask)


def match_verdict(al: Alignment, p: ScoringParams) -> Verdict:
    t = p.verbatim_threshold
    if al.containment >= t and al.coverage >= t and al.density >= t:
        return Verdict.VERBATIM
    if al.containment >= p.derived_containment:
        return Verdict.DERIVED
    return Verdict.PARTIAL


def overall_verdict(verdicts: list[Verdict], wire_fraction: float, p: ScoringParams) -> Verdict:
    """The article's verdict: its best source's, raised to DERIVED when several
    sources together make up most of it (a merged story)."""
    if not verdicts:
        return Verdict.UNRELATED
    best = max(verdicts)
    if best < Verdict.DERIVED and wire_fraction >= p.derived_containment:
        return Verdict.DERIVED
    return best
