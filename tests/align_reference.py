"""The one reference alignment the tests hold: `align` in plain steps, story by story.

Match's `scoring.align_many` and de-duplication's `scoring.align_pairs` (through
``tests/dedup_reference.verify``) are both checked against it.
"""

from __future__ import annotations

import numpy as np

from wiretrace.scoring import Alignment, Passage, ScoringParams, _coverage_mask
from wiretrace.shingling import U32


def reference_align(
    article: U32, article_bigrams: U32, bigram_weights: np.ndarray, story: U32, n_story_tokens: int, p: ScoringParams
) -> Alignment | None:
    """`align`, one story at a time in plain steps, kept to check the compiled passes against."""
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
    s_pos = order[idx_clipped[a_pos]].astype(np.int64)  # the first occurrence of each
    # ...unless that is off the previous match's diagonal by more than max_gap and the story repeats the
    # shingle within max_gap of that diagonal: then the nearest such occurrence (the lower one on a tie).
    for i in range(1, a_pos.size):
        c = int(a_pos[i] + s_pos[i - 1] - a_pos[i - 1])
        if abs(int(s_pos[i]) - c) > p.max_gap:
            near = [x for x in np.flatnonzero(story == article[a_pos[i]]).tolist() if abs(x - c) <= p.max_gap]
            if near:
                s_pos[i] = min(near, key=lambda x: (abs(x - c), x))
    diag = s_pos - a_pos
    breaks = np.flatnonzero((np.diff(a_pos) > p.max_gap) | (np.abs(np.diff(diag)) > p.max_gap)) + 1
    seg_starts = np.concatenate(([0], breaks))
    seg_ends = np.concatenate((breaks, [a_pos.size]))
    k = p.shingle_size
    passages: list[Passage] = []
    a_lo, a_hi, s_lo, s_hi = [], [], [], []
    matched = spanned = 0
    for lo, hi in zip(seg_starts.tolist(), seg_ends.tolist(), strict=True):
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
    article_mask = _coverage_mask(n_article_tokens, a_lo, a_hi)
    story_mask = _coverage_mask(n_story_tokens, s_lo, s_hi)
    a_set = np.unique(article)
    inter = int(np.isin(a_set, sorted_story).sum())
    union = a_set.size + np.unique(sorted_story).size - inter
    return Alignment(
        passages=tuple(passages),
        article_mask=article_mask,
        containment=float(article_mask.sum()) / max(1, n_article_tokens),
        coverage=float(story_mask.sum()) / max(1, n_story_tokens),
        jaccard=inter / union if union else 0.0,
        density=matched / spanned if spanned else 0.0,
    )
