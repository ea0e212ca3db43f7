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

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from wiretrace.shingling import I64, U32


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
    n_article_tokens = article_bigrams.size + 1
    if article.size == 0 or story.size == 0:
        return None
    order = np.argsort(story, kind="stable")
    sorted_story = story[order]
    idx = np.searchsorted(sorted_story, article)
    idx_clipped = np.minimum(idx, sorted_story.size - 1)
    hit = sorted_story[idx_clipped] == article
    a_pos = np.flatnonzero(hit)
    if a_pos.size == 0:
        return None
    s_pos = order[idx_clipped[a_pos]].astype(np.int64)
    # Break the chain where the article jumps ahead or the diagonal shifts.
    diag = s_pos - a_pos
    breaks = np.flatnonzero((np.diff(a_pos) > p.max_gap) | (np.abs(np.diff(diag)) > p.max_gap)) + 1
    seg_starts = np.concatenate(([0], breaks))
    seg_ends = np.concatenate((breaks, [a_pos.size]))

    k = p.shingle_size
    passages: list[Passage] = []
    a_lo: list[int] = []
    a_hi: list[int] = []
    s_lo: list[int] = []
    s_hi: list[int] = []
    matched = 0
    spanned = 0
    for lo, hi in zip(seg_starts.tolist(), seg_ends.tolist(), strict=True):
        # Bigram positions covered by the matched shingles of this segment.
        covered = (a_pos[lo:hi, None] + np.arange(k - 1)[None, :]).reshape(-1)
        _, first = np.unique(article_bigrams[covered], return_index=True)
        if float(bigram_weights[covered[first]].sum()) < p.min_passage_weight:
            continue
        a0, a1 = int(a_pos[lo]), int(a_pos[hi - 1]) + k
        seg_s = s_pos[lo:hi]
        s0, s1 = int(seg_s.min()), int(seg_s.max()) + k
        span = a1 - a0 - k + 1
        passages.append(Passage(a0, a1, s0, s1, min(1.0, (hi - lo) / span)))
        a_lo.append(a0)
        a_hi.append(a1)
        s_lo.append(s0)
        s_hi.append(s1)
        matched += hi - lo
        spanned += span
    if not passages:
        return None
    article_mask = _coverage_mask(n_article_tokens, np.array(a_lo), np.array(a_hi))
    story_mask = _coverage_mask(n_story_tokens, np.array(s_lo), np.array(s_hi))
    a_set = np.unique(article)
    inter = int(np.isin(a_set, sorted_story, assume_unique=False).sum())
    union = a_set.size + np.unique(sorted_story).size - inter
    return Alignment(
        passages=tuple(passages),
        article_mask=article_mask,
        containment=float(article_mask.sum()) / max(1, n_article_tokens),
        coverage=float(story_mask.sum()) / max(1, n_story_tokens),
        jaccard=inter / union if union else 0.0,
        density=matched / spanned if spanned else 0.0,
    )


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
    idx = np.minimum(np.searchsorted(uniq, flat), uniq.size - 1)
    hit = uniq[idx] == flat
    pairs = np.unique(owner[hit] * uniq.size + idx[hit])
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
