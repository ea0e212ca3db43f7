"""The batched alignment answers exactly what the one-story-at-a-time version did."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.align_reference import reference_align
from wiretrace.scoring import (
    Alignment,
    ScoringParams,
    _coverage_mask,
    _slot_find,
    _slots,
    align,
    align_many,
    shared_terms,
)
from wiretrace.shingling import U32, Ragged, distinct, shingle_hashes

P = ScoringParams(
    shingle_size=4,
    max_gap=8,
    min_passage_weight=8.0,
    min_match_tokens=12,
    rewrite_containment=0.15,
    min_containment=0.05,
    derived_containment=0.5,
    verbatim_threshold=0.9,
    passage_bridge=0,  # the chains as they are: what the reference below computes
)


def _same(a: Alignment | None, b: Alignment | None) -> bool:
    if a is None or b is None:
        return a is b
    return (
        a.passages == b.passages
        and np.array_equal(a.article_mask, b.article_mask)
        and (a.containment, a.coverage, a.jaccard, a.density) == (b.containment, b.coverage, b.jaccard, b.density)
    )


def _story_from(rng: np.random.Generator, article: U32, vocab: int) -> U32:
    """A story sharing shuffled, noisy, repeated stretches of the article, among other words."""
    parts: list[np.ndarray] = [rng.integers(0, vocab, int(rng.integers(0, 80)), dtype=np.uint32)]
    for _ in range(int(rng.integers(0, 5))):
        a = int(rng.integers(0, max(1, article.size - 5)))
        piece = article[a : a + int(rng.integers(3, 60))].copy()
        noisy = rng.random(piece.size) < 0.05
        piece[noisy] = rng.integers(0, vocab, int(noisy.sum()), dtype=np.uint32)
        parts.append(piece)
        parts.append(rng.integers(0, vocab, int(rng.integers(0, 20)), dtype=np.uint32))
    return np.concatenate(parts).astype(np.uint32)


def test_align_many_equals_the_reference_on_many_stories() -> None:
    rng = np.random.default_rng(7)
    for trial in range(60):
        vocab = int(rng.choice([30, 300, 5000]))  # small vocabularies repeat shingles often
        tokens = rng.integers(0, vocab, int(rng.integers(1, 400)), dtype=np.uint32)
        stories_tokens = [_story_from(rng, tokens, vocab) for _ in range(int(rng.integers(1, 40)))]
        stories_tokens.append(np.empty(0, np.uint32))
        article = shingle_hashes(tokens, P.shingle_size)
        bigrams = shingle_hashes(tokens, 2)
        # Random weights (by value, as term weights are), or all ones as de-duplication uses.
        weights = np.ones(bigrams.size) if trial % 3 == 0 else (bigrams % 997) / 997.0 * 2.5
        stories = [shingle_hashes(t, P.shingle_size) for t in stories_tokens]
        sizes = [t.size for t in stories_tokens]
        wanted = rng.random(len(stories)) < 0.8
        min_shared = int(rng.choice([1, 2, 8]))
        got = align_many(article, bigrams, weights, stories, sizes, P, wanted, min_shared)
        for i, story in enumerate(stories):
            enough = np.intersect1d(article, story).size >= min_shared
            expected = reference_align(article, bigrams, weights, story, sizes[i], P) if wanted[i] and enough else None
            assert _same(got[i], expected), (trial, i)
            assert _same(
                align(article, bigrams, weights, story, sizes[i], P),
                reference_align(article, bigrams, weights, story, sizes[i], P),
            )


def test_align_many_with_passages_joined_equals_align_story_by_story() -> None:
    """With chains joined into passages (and repeated shingles paired near the diagonal), the
    batched pass still answers for each story what aligning it alone does."""
    rng = np.random.default_rng(11)
    joined = dataclasses.replace(P, passage_bridge=64)
    for trial in range(40):
        vocab = int(rng.choice([30, 300, 5000]))
        tokens = rng.integers(0, vocab, int(rng.integers(1, 400)), dtype=np.uint32)
        stories_tokens = [_story_from(rng, tokens, vocab) for _ in range(int(rng.integers(1, 30)))]
        article = shingle_hashes(tokens, P.shingle_size)
        bigrams = shingle_hashes(tokens, 2)
        weights = np.ones(bigrams.size) if trial % 3 == 0 else (bigrams % 997) / 997.0 * 2.5
        stories = [shingle_hashes(t, P.shingle_size) for t in stories_tokens]
        sizes = [t.size for t in stories_tokens]
        got = align_many(article, bigrams, weights, stories, sizes, joined)
        for i, story in enumerate(stories):
            assert _same(got[i], align(article, bigrams, weights, story, sizes[i], joined)), (trial, i)


def test_identical_texts_align_whole_however_often_a_phrase_repeats() -> None:
    """Containment and coverage 1.0 for a text against itself, whichever is the article: a shingle the
    text repeats pairs on the diagonal being followed, not with its first occurrence."""
    rng = np.random.default_rng(2)
    for trial in range(30):
        words = rng.integers(0, 400, int(rng.integers(60, 300)), dtype=np.uint32)
        phrase = words[: int(rng.integers(4, 30))]
        parts = [words[:40], phrase, words[40:], phrase, phrase[::-1], phrase]
        tokens = np.concatenate(parts).astype(np.uint32)
        article, bigrams = shingle_hashes(tokens, P.shingle_size), shingle_hashes(tokens, 2)
        for params in (P, dataclasses.replace(P, passage_bridge=64)):
            al = align(article, bigrams, np.ones(bigrams.size), article, tokens.size, params)
            assert al is not None and (al.containment, al.coverage) == (1.0, 1.0), trial


def test_align_many_of_nothing() -> None:
    empty = np.empty(0, np.uint32)
    assert align_many(empty, empty, np.empty(0), [np.arange(5, dtype=np.uint32)], [8], P) == [None]
    assert align_many(np.arange(5, dtype=np.uint32), np.arange(7, dtype=np.uint32), np.ones(7), [], [], P) == []


def test_slots_locate_values_in_a_sorted_table() -> None:
    rng = np.random.default_rng(3)
    for size in (0, 1, 7, 600, 5000):
        table = np.unique(rng.integers(0, 2**32, size, dtype=np.uint32))
        values = np.concatenate(
            [rng.choice(table, 50) if table.size else table, rng.integers(0, 2**32, 500, dtype=np.uint32)]
        ).astype(np.uint32)
        slots, shift = _slots(table)
        for v in values.tolist():
            want = int(np.searchsorted(table, v))
            want = want if want < table.size and table[want] == v else -1
            assert _slot_find(table, slots, shift, np.uint32(v)) == want


def test_shingles_of_many_sequences_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(5)
    seqs = [rng.integers(0, 2**32, int(n), dtype=np.uint32) for n in rng.integers(0, 30, 50)]
    for k in (1, 2, 4, 9):
        got = Ragged.of(seqs).shingles(k)
        assert len(got) == len(seqs)
        assert np.array_equal(got.sizes, [max(0, s.size - k + 1) for s in seqs])
        for g, s in zip(got, seqs, strict=True):
            assert np.array_equal(g, shingle_hashes(s, k))
    assert len(Ragged.of([]).shingles(4)) == 0


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=60),
    st.lists(st.lists(st.integers(0, 60), max_size=80), min_size=1, max_size=12),
)
def test_shared_terms_equal_sets(article: list[int], stories: list[list[int]]) -> None:
    """Distinct shared terms per story, and their weights summed in term order (bit for bit)."""
    terms = np.array(article, dtype=np.uint32)
    weights = np.arange(1, terms.size + 1) / 7.0  # each occurrence its own weight: the first counts
    first = {int(t): float(weights[i]) for i, t in reversed(list(enumerate(article)))}
    counts, sums = shared_terms(terms, weights, [np.array(s, dtype=np.uint32) for s in stories])
    for story, count, total in zip(stories, counts.tolist(), sums.tolist(), strict=True):
        common = sorted(set(story) & set(first))
        assert count == len(common)
        want = 0.0
        for t in common:
            want += first[t]
        assert total == want


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 9), max_size=300))
def test_distinct_equals_numpy_unique(values: list[int]) -> None:
    """Sorted distinct values, each one's first position, and every position's value index."""
    a = np.array(values, dtype=np.uint32)
    want = np.unique(a, return_index=True, return_inverse=True)
    got = distinct(a)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)  # type: ignore[arg-type]  # np.unique's tuple is typed loosely


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 60), st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=6))
def test_coverage_mask_marks_the_union_of_the_ranges(n: int, ranges: list[tuple[int, int]]) -> None:
    ranges = [(min(a, n), min(b, n)) for a, b in ranges]
    inside = {t for a, b in ranges for t in range(a, b)}
    mask = _coverage_mask(n, [a for a, _ in ranges], [b for _, b in ranges])
    assert mask.tolist() == [t in inside for t in range(n)]
