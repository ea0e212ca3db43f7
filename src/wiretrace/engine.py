"""The detector: store + LSH index + verification, behind a small Python API.

The gRPC service, the CLI and the evaluation all call this; it knows nothing
about protobuf. Writes go to the store first (durable), then to the index;
at start-up the index is rebuilt from the store's band keys.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wiretrace.backend import Backend, open_backend
from wiretrace.config import Settings
from wiretrace.evidence import ArticleTerms, feature_row, load_model, numeric_tokens, quoted_tokens
from wiretrace.pipeline import ArticlePrint, TextPipeline, sampled, term_keys, word_terms
from wiretrace.scoring import (
    Alignment,
    Lead,
    ScoringParams,
    align_many,
    lexical_overlap,
    match_verdict,
    overall_verdict,
    qualifies,
    shared_terms,
    verdict_reason,
)
from wiretrace.shingling import I64, U32, U64, Ragged, distinct, sorted_unique
from wiretrace.text import Tokens, token_spans_many
from wiretrace.types import (
    NO_FILTER,
    BackendStats,
    Candidate,
    Evidence,
    MatchResult,
    PassageMatch,
    SourceMatch,
    StoryFilter,
    StoryPrint,
    StoryRecord,
    StoryText,
    Verdict,
)

# Re-exported for code written before these moved to wiretrace.types.
__all__ = ["Detector", "MatchResult", "PassageMatch", "SourceMatch", "Stats"]

log = logging.getLogger(__name__)

_NONE = np.empty(0, dtype=np.uint32)


Stats = BackendStats


class Detector:
    """Indexes wire stories and answers, for an article, which of them it derives from.

    It works on any ``Backend`` (the store and the LSH lookup over it), so the
    same matching runs on the embedded store and on a shared one; the backend
    is chosen from the settings by ``wiretrace.backend.open_backend``.
    """

    def __init__(self, settings: Settings, backend: Backend) -> None:
        self.settings = settings
        self.backend = backend
        self.pipeline = TextPipeline(settings.index)
        m = settings.match
        self.params = ScoringParams(
            shingle_size=settings.index.shingle_size,
            max_gap=m.max_gap,
            min_passage_weight=m.min_passage_weight,
            min_match_tokens=m.min_match_tokens,
            rewrite_containment=m.rewrite_containment,
            min_containment=m.min_containment,
            derived_containment=m.derived_containment,
            verbatim_threshold=m.verbatim_threshold,
            passage_bridge=m.passage_bridge,
            passage_bridge_share=m.passage_bridge_share,
        )
        self.rewrite_model = load_model(m.rewrite_model)

    @classmethod
    def open(cls, settings: Settings) -> Detector:
        """A detector on the store the settings name (``--store``, else the data dir)."""
        return cls(settings, open_backend(settings))

    def close(self) -> None:
        self.backend.close()

    # -- writes ----------------------------------------------------------

    def prepare(self, bodies: list[str]) -> list[StoryPrint]:
        return self.pipeline.stories(bodies)

    def upsert(self, records: Sequence[StoryRecord], prints: Sequence[StoryPrint] | None = None) -> None:
        """Store durably, then make matchable. Re-sent ids replace the old story."""
        if not records:
            return
        if prints is None:
            prints = self.prepare([r.body for r in records])
        self.backend.upsert(list(zip(records, prints, strict=True)))

    def delete(self, story_ids: Sequence[str]) -> int:
        return self.backend.delete(story_ids)

    def expire(self, cutoff_ns: int) -> int:
        """Delete the stories published before `cutoff_ns` (retention); returns how many."""
        return self.backend.expire(cutoff_ns)

    # -- reads -----------------------------------------------------------

    def get(self, story_id: str) -> StoryRecord | None:
        return self.backend.get(story_id)

    def stats(self) -> Stats:
        return self.backend.stats()

    def check(self) -> None:
        """Raise StoreUnavailableError unless the store can be used now."""
        self.backend.check()

    def match(self, text: str, top_k: int = 0, story_filter: StoryFilter = NO_FILTER) -> MatchResult:
        """Verdict and sources of `text` among the stories `story_filter` admits, best first (at most
        `top_k`, 0: the default setting).

        Reads only: safe from many threads at once, and alongside writes.
        """
        m = self.settings.match
        top_k = top_k or m.default_top_k
        art = self.pipeline.article(text, m.query_step)
        n_tokens = len(art.tokens)
        self.backend.refresh()
        numbers = self._candidates(art, story_filter)
        if numbers.size == 0 or n_tokens == 0:
            reason = verdict_reason(Verdict.UNRELATED, None, 0, 0.0, n_tokens, int(numbers.size), self.params)
            return MatchResult(Verdict.UNRELATED, (), 1.0, int(numbers.size), reason)
        found, _ = self._verify_all(self._article_terms(text, art), self.backend.candidates(numbers.tolist()))
        ranked = _rank_by_marginal_gain(found, self.params.min_match_tokens, self.settings.index.shingle_size - 1)
        covered = np.zeros(n_tokens, dtype=bool)
        for f in found:
            covered |= f.mask
        wire_fraction = float(covered.sum()) / n_tokens
        groups = _group_editions(ranked, self.settings.index.shingle_size, m.edition_overlap, top_k)
        # Texts only for the stories shown; one deleted since verification is left out, as if
        # the deletion had come first (numbers are never reused, so a text found is the one verified).
        texts = self.backend.texts([f.candidate.number for f, _ in groups])
        shown = [(f, eds) for f, eds in groups if f.candidate.number in texts]
        story_spans = token_spans_many([texts[f.candidate.number].body for f, _ in shown])
        matches = tuple(
            self._source_match(art.tokens, f, texts[f.candidate.number], eds, *t)
            for (f, eds), t in zip(shown, story_spans, strict=True)
        )
        verdict = overall_verdict([f.verdict for f in found], wire_fraction, self.params)
        best = ranked[0] if ranked else None
        lead = (
            None
            if best is None
            else Lead(best.candidate.story_id, best.containment, best.verdict, best.alignment is None)
        )
        return MatchResult(
            verdict=verdict,
            matches=matches,
            original_fraction=1.0 - wire_fraction,
            candidates_checked=int(numbers.size),
            reason=verdict_reason(verdict, lead, len(ranked), wire_fraction, n_tokens, int(numbers.size), self.params),
        )

    def _candidates(self, art: ArticlePrint, story_filter: StoryFilter = NO_FILTER) -> np.ndarray:
        """Stories to verify: most window hits first, plus (unless the windows already found a
        copy) the best whole-document ones and those sharing the most of the article's rarest
        posted word pairs: they look for what windows miss (a brief, a paraphrase).

        Stories the filter does not admit are dropped from the hits before they are
        counted, so they take no candidate slot.
        """
        m = self.settings.match
        picked = []
        copied_everywhere = True
        # A long text (a newspaper page, a digest of many stories) is cut into sections that each
        # propose their own candidates: under one cap for the whole text, the stories of its later
        # parts were never verified and their copy counted as original text.
        n_tokens = len(art.tokens)
        per_window = max(1, m.query_step)
        size = max(m.section_tokens, per_window)
        for lo in range(0, max(n_tokens, 1), size):
            hi = lo + size if lo + 2 * size <= n_tokens else n_tokens  # a short tail joins the last section
            keys = art.window_keys[lo // per_window : -(-hi // per_window)].reshape(-1)
            windows, most = self._top(keys, m.max_candidates, 0, story_filter)
            picked.append(windows)
            # Term postings find what the windows cannot see (a brief, a paraphrase); a section
            # whose windows already hit one story that often is a copy of it, found.
            if most < m.term_skip_hits:
                copied_everywhere = False
                terms = self._term_query(art.bigrams[lo : max(lo, hi - 1)])
                picked.append(self._top(terms, m.term_candidates, m.term_max_bucket, story_filter)[0])
            if hi >= n_tokens:
                break
        if not copied_everywhere:
            # A whole-document bucket holds every story whose rarest-looking word
            # (by that permutation) is one common word: at 100k stories half the
            # buckets hold over 4% of the index. Such buckets rank nothing, and
            # reading them made this lookup grow with the index.
            picked.append(self._top(art.topic_keys, m.topic_candidates, m.topic_max_bucket, story_filter)[0])
        return sorted_unique(np.concatenate(picked))

    def _top(self, keys: U64, limit: int, max_bucket: int, story_filter: StoryFilter) -> tuple[np.ndarray, int]:
        """The ``limit`` admitted stories with most hits on ``keys``, and the most hits any had."""
        hits = self.backend.admit(self.backend.lookup(keys, max_bucket), story_filter) if limit > 0 else _NONE
        if hits.size == 0:
            return _NONE, 0
        numbers, counts = np.unique(hits, return_counts=True)
        if numbers.size > limit:
            numbers = numbers[np.argsort(-counts, kind="stable")[:limit]]
        return numbers, int(counts.max())

    def _article_terms(self, text: str, art: ArticlePrint) -> ArticleTerms:
        """The article's terms with their IDF weights; those in quoted speech discounted."""
        tokens = art.tokens.hashes
        weights = self.backend.term_weights(np.concatenate((art.bigrams, word_terms(tokens))))
        pair_w, word_w = weights[: art.bigrams.size], weights[art.bigrams.size :]
        q = self.settings.match.quote_weight
        quoted = quoted_tokens(text, art.tokens.starts)
        if q < 1.0 and tokens.size:
            pair_w = np.where(quoted[:-1] & quoted[1:], pair_w * q, pair_w)
            word_w = np.where(quoted, word_w * q, word_w)
        figures = tokens[numeric_tokens(text, art.tokens.starts, art.tokens.ends)]
        return ArticleTerms(art.shingles, art.bigrams, pair_w, tokens, word_w, figures, quoted)

    def evidence(self, text: str) -> tuple[str, np.ndarray] | None:
        """The best rewrite candidate's story id and its evidence features (``evidence.FEATURES``).

        For training and inspecting the rewrite model; ``match`` decides with the same numbers.
        """
        art = self.pipeline.article(text, self.settings.match.query_step)
        self.backend.refresh()
        numbers = self._candidates(art)
        if numbers.size == 0 or len(art.tokens) < 2:
            return None
        cands = self.backend.candidates(numbers.tolist())
        _, best = self._verify_all(self._article_terms(text, art), cands)
        return None if best is None else (cands[best[0]].story_id, best[1])

    def _term_query(self, bigrams: U32) -> U64:
        """Keys of the article's rarest posted word pairs (a common pair finds everything and nothing)."""
        m = self.settings.match
        posted = sorted_unique(bigrams[sampled(bigrams, self.settings.index.term_sample)])
        if posted.size == 0 or m.term_candidates <= 0:
            return np.empty(0, dtype=np.uint64)
        if posted.size > m.term_query:
            rarest = np.argsort(-self.backend.term_weights(posted), kind="stable")[: m.term_query]
            posted = posted[rarest]
        return term_keys(posted)

    def _verify_all(
        self, art: ArticleTerms, cands: list[Candidate]
    ) -> tuple[list[Found], tuple[int, np.ndarray] | None]:
        """Exact passages make a source; rewriting is credited only to the
        story with the most of the article's weighted vocabulary, when the
        rewrite model finds that evidence strong enough (stories on the same
        event share words too, but fewer of the rarer ones, and fewer phrases).

        Also returns the best rewrite candidate's position and features."""
        p = self.params
        m = self.settings.match
        bigrams, weights = art.bigrams, art.pair_weights
        tokens = Ragged.of([c.tokens for c in cands])
        story_bigrams = tokens.shingles(2)
        story_shingles = tokens.shingles(self.settings.index.shingle_size)
        total = float(weights[distinct(bigrams)[1]].sum()) or 1.0
        _, found_weight = shared_terms(bigrams, weights, story_bigrams)
        shares = found_weight / total
        # A passage needs more than one shared shingle.
        alignments = align_many(art.shingles, bigrams, weights, story_shingles, tokens.sizes, p, min_shared=2)

        # A copied paragraph (min_copied_tokens outside quotation marks) is a source even when it is
        # a small part of both texts (a passage reused inside a long feature or report); shorter
        # passages must also be a share of one.
        paragraph = [
            al is not None and int((al.article_mask & ~art.quoted).sum()) >= m.min_copied_tokens for al in alignments
        ]
        exacts = [al is not None and (para or qualifies(al, p)) for al, para in zip(alignments, paragraph, strict=True)]
        best_i = int(np.argmax(shares)) if shares.size else -1
        runner_up = self._rival(best_i, shares, story_shingles, exacts)
        evidence: tuple[int, np.ndarray] | None = None
        probability = 0.0
        if best_i >= 0:
            al = alignments[best_i]
            if exacts[best_i] and al is not None and al.containment >= p.derived_containment:
                probability = 1.0  # copied: its own evidence, whatever a rewrite model would say
            else:
                row = feature_row(art, tokens, story_shingles, best_i, shares, runner_up, al)
                evidence = (best_i, row)
                probability = float(self.rewrite_model.probability(row[None, :])[0])

        # A sentence or two in common (a quote, a stock phrase) is what independent reports of
        # one event share too: such passages make a source only when the article's best
        # evidence, copied or rewritten, shows that it was built from the wire. A copied
        # paragraph, or the share of the article DERIVED asks, is evidence enough by itself.
        standalone = [
            al is not None and (para or al.containment >= p.derived_containment)
            for al, para in zip(alignments, paragraph, strict=True)
        ]
        corroborated = probability >= m.rewrite_probability or any(
            ex and alone for ex, alone in zip(exacts, standalone, strict=True)
        )
        chance = np.zeros(len(cands))  # the model's probability, reported for the candidate it judged
        if evidence is not None:
            chance[best_i] = round(probability, 4)
        found: list[Found] = []
        for i, cand in enumerate(cands):
            al = alignments[i]
            exact = exacts[i] and (corroborated or standalone[i])
            share = float(shares[i])
            rewritten = (
                i == best_i
                and share >= p.rewrite_containment
                and probability >= m.rewrite_probability
                and found_weight[i] >= p.min_passage_weight  # as much evidence as one passage needs
            )
            if exact and al is not None and (not rewritten or al.containment >= share):
                found.append(
                    Found(cand, al, al.article_mask, al.containment, match_verdict(al, p), Evidence.COPIED, chance[i])
                )
            elif rewritten:
                mask = lexical_overlap(bigrams, weights, story_bigrams[i]).article_mask
                if al is not None:
                    mask |= al.article_mask
                verdict = Verdict.DERIVED if share >= p.derived_containment else Verdict.PARTIAL
                if exact and al is not None:
                    verdict = max(verdict, match_verdict(al, p))
                kind = Evidence.COPIED if exact else Evidence.REWRITTEN  # copied passages are the plainer word
                found.append(Found(cand, al, mask, share, verdict, kind, chance[i]))
        return found, evidence

    def _rival(self, best: int, shares: np.ndarray, story_shingles: Ragged, exacts: list[bool]) -> float:
        """The strongest rival's rewrite share, against the best story's.

        When the article also copies passages from the best story, that
        story's re-sends, editions and updates (a good part of their shingles
        in common with it) are the same text, not rivals: they cannot show
        that the article's vocabulary is merely the subject's. Without copied
        passages the editions still count, since an independent story on the
        same running event shares words with all of them.
        """
        if best < 0:
            return 0.0
        mine = story_shingles[best]
        rivals = shares.copy()
        rivals[best] = 0.0
        if exacts[best] and mine.size and shares.size > 1:
            rivals[editions_of(mine, story_shingles, self.settings.match.edition_overlap)] = 0.0
        return float(rivals.max())

    def _source_match(
        self, art_tokens: Tokens, f: Found, story: StoryText, editions: list[Found], story_starts: I64, story_ends: I64
    ) -> SourceMatch:
        cand, al = f.candidate, f.alignment
        n_story = story_starts.size
        passages = tuple(
            PassageMatch(
                article_start=int(art_tokens.starts[p.article_start]),
                article_end=int(art_tokens.ends[p.article_end - 1]),
                story_start=int(story_starts[min(p.story_start, n_story - 1)]),
                story_end=int(story_ends[min(p.story_end, n_story) - 1]),
                similarity=round(p.similarity, 4),
            )
            for p in (al.passages if al is not None else ())
        )
        return SourceMatch(
            story_id=cand.story_id,
            headline=story.headline,
            containment=round(f.containment, 4),
            coverage=round(al.coverage if al is not None else 0.0, 4),
            jaccard=round(al.jaccard if al is not None else 0.0, 4),
            verdict=f.verdict,
            passages=passages,
            source=story.source,
            published_at_ns=story.published_at_ns,
            editions=tuple(e.candidate.story_id for e in editions),
            evidence=f.evidence,
            rewrite_probability=float(f.rewrite_probability),
        )


@dataclass(frozen=True, slots=True)
class Found:
    """A verified source: its alignment (None for a pure rewrite) and what it explains."""

    candidate: Candidate
    alignment: Alignment | None
    mask: np.ndarray  # article tokens this source accounts for
    containment: float
    verdict: Verdict
    evidence: Evidence
    rewrite_probability: float

    @property
    def coverage(self) -> float:
        return self.alignment.coverage if self.alignment is not None else 0.0

    @property
    def exactness(self) -> float:
        """Share of the passages' shingles that match word for word (0 for a pure rewrite)."""
        return self.alignment.density if self.alignment is not None else 0.0


def editions_of(mine: U32, story_shingles: Ragged, overlap: float) -> np.ndarray:
    """Which stories are editions of the one with shingles `mine` (re-sends, updates): they
    have at least `overlap` of the smaller one's shingles in common with it."""
    if mine.size == 0:
        return np.zeros(len(story_shingles), dtype=bool)
    n_common, _ = shared_terms(mine, np.ones(mine.size), story_shingles)
    # Sizes with repeats: prose repeats few shingles, and distinct counts cost more than the alignment.
    return np.asarray(n_common >= overlap * np.maximum(1, np.minimum(story_shingles.sizes, mine.size)))


def _group_editions(
    ranked: list[Found], shingle_size: int, overlap: float, limit: int
) -> list[tuple[Found, list[Found]]]:
    """The first `limit` sources, each with the later-ranked sources that are editions of it.

    Near-copies of one story (re-sends, corrected editions, updates) all match an article
    copied from any of them; the answer names the story once, with its editions, rather than
    as several sources. A source joins the first earlier head it is an edition of.

    Heads past `limit` are not shown, so their editions are not looked for: an article
    matching dozens of stories (a digest, a text of stock phrases) compared each with all
    the others, the slowest Match at 1M stories (8.6 ms, over half of it here).
    """
    if len(ranked) < 2:
        return [(f, []) for f in ranked[:limit]]
    shingles = Ragged.of([f.candidate.tokens for f in ranked]).shingles(shingle_size)
    head_of = np.full(len(ranked), -1, dtype=np.int64)
    groups: list[tuple[Found, list[Found]]] = []
    for i, f in enumerate(ranked):
        if head_of[i] >= 0:
            groups[int(head_of[i])][1].append(f)
            continue
        if len(groups) >= limit:
            continue  # a head that would not be shown
        same = editions_of(shingles[i], shingles, overlap)
        same[: i + 1] = False
        head_of[same & (head_of < 0)] = len(groups)
        groups.append((f, []))
    return groups


def _rank_by_marginal_gain(found: list[Found], min_gain: int, near: int = 0) -> list[Found]:
    """Order sources greedily by the article text each newly explains.

    A merged article's second and third sources then come before near-copies
    of the first (re-sends, later updates), which explain nothing new; those
    follow, best containment first.

    Gains within `near` tokens of the best are a tie (where a passage starts or
    ends moves by up to a shingle when a word differs): of those, the source
    whose passages match word for word comes first, so a sentence copied from
    one edition names that edition, not a reworded one that happens to be
    shorter; then the larger gain, then the story the article uses more of (a
    lead copied from one story into a longer one).
    """
    pending = sorted(found, key=lambda f: (-f.containment, -f.coverage, f.candidate.story_id))
    if not pending:
        return []
    explained = np.zeros_like(pending[0].mask)
    # Each mask's extent: a source of a long text covers one stretch of it, so its gain is counted there.
    spans = []
    for f in pending:
        where = np.flatnonzero(f.mask)
        spans.append((int(where[0]), int(where[-1]) + 1) if where.size else (0, 0))
    ranked: list[Found] = []
    while pending:
        gains = [int((f.mask[lo:hi] & ~explained[lo:hi]).sum()) for f, (lo, hi) in zip(pending, spans, strict=True)]
        top = max(gains)
        if top < min_gain:
            break
        tied = [i for i, g in enumerate(gains) if g >= top - near]
        best = max(tied, key=lambda i: (pending[i].exactness, gains[i], pending[i].coverage))
        f = pending.pop(best)
        spans.pop(best)
        explained |= f.mask
        ranked.append(f)
    return ranked + pending
