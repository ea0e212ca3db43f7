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

from wiretrace.backend import Backend, BackendStats, EmbeddedBackend
from wiretrace.config import Settings
from wiretrace.pipeline import TextPipeline
from wiretrace.scoring import Alignment, ScoringParams, Verdict, align, match_verdict, overall_verdict, qualifies
from wiretrace.store import Candidate, StoryPrint, StoryRecord
from wiretrace.text import Tokens, tokenize

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PassageMatch:
    """Character ranges [start, end) in the article and in the story."""

    article_start: int
    article_end: int
    story_start: int
    story_end: int
    similarity: float


@dataclass(frozen=True, slots=True)
class SourceMatch:
    story_id: str
    headline: str
    containment: float
    coverage: float
    jaccard: float
    verdict: Verdict
    passages: tuple[PassageMatch, ...]


@dataclass(frozen=True, slots=True)
class MatchResult:
    verdict: Verdict
    matches: tuple[SourceMatch, ...]
    original_fraction: float
    candidates_checked: int


Stats = BackendStats


class Detector:
    def __init__(self, settings: Settings, backend: Backend) -> None:
        self.settings = settings
        self.backend = backend
        self.pipeline = TextPipeline(settings.index)
        m = settings.match
        self.params = ScoringParams(
            shingle_size=settings.index.shingle_size,
            max_gap=m.max_gap,
            min_passage_shingles=m.min_passage_shingles,
            min_match_tokens=m.min_match_tokens,
            min_containment=m.min_containment,
            derived_containment=m.derived_containment,
            verbatim_threshold=m.verbatim_threshold,
        )

    @classmethod
    def open(cls, settings: Settings) -> Detector:
        """A detector on the embedded store in ``settings.server.data_dir``."""
        return cls(settings, EmbeddedBackend(settings.server.data_dir, settings.index.fingerprint()))

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

    # -- reads -----------------------------------------------------------

    def get(self, story_id: str) -> StoryRecord | None:
        return self.backend.get(story_id)

    def stats(self) -> Stats:
        return self.backend.stats()

    def match(self, text: str, top_k: int = 0) -> MatchResult:
        m = self.settings.match
        top_k = top_k or m.default_top_k
        art = self.pipeline.article(text, m.query_step)
        n_tokens = len(art.tokens)
        hits = self.backend.lookup(art.band_keys.reshape(-1))
        if hits.size == 0 or n_tokens == 0:
            return MatchResult(Verdict.UNRELATED, (), 1.0, 0)
        numbers, counts = np.unique(hits, return_counts=True)
        if numbers.size > m.max_candidates:
            numbers = numbers[np.argsort(-counts, kind="stable")[: m.max_candidates]]
        found: list[tuple[Candidate, Alignment]] = []
        for cand in self.backend.candidates(numbers.tolist()):
            al = align(art.shingles, n_tokens, cand.shingles, cand.n_tokens, self.params)
            if al is not None and qualifies(al, self.params):
                found.append((cand, al))
        ranked = _rank_by_marginal_gain(found, self.params.min_match_tokens)
        covered = np.zeros(n_tokens, dtype=bool)
        for _, al in found:
            covered |= al.article_mask
        wire_fraction = float(covered.sum()) / n_tokens
        verdicts = [match_verdict(al, self.params) for _, al in found]
        matches = tuple(self._source_match(art.tokens, cand, al) for cand, al in ranked[:top_k])
        return MatchResult(
            verdict=overall_verdict(verdicts, wire_fraction, self.params),
            matches=matches,
            original_fraction=1.0 - wire_fraction,
            candidates_checked=int(numbers.size),
        )

    def _source_match(self, art_tokens: Tokens, cand: Candidate, al: Alignment) -> SourceMatch:
        story_tokens = tokenize(cand.body)
        passages = tuple(
            PassageMatch(
                article_start=int(art_tokens.starts[p.article_start]),
                article_end=int(art_tokens.ends[p.article_end - 1]),
                story_start=int(story_tokens.starts[min(p.story_start, len(story_tokens) - 1)]),
                story_end=int(story_tokens.ends[min(p.story_end, len(story_tokens)) - 1]),
                similarity=round(p.similarity, 4),
            )
            for p in al.passages
        )
        return SourceMatch(
            story_id=cand.story_id,
            headline=cand.headline,
            containment=round(al.containment, 4),
            coverage=round(al.coverage, 4),
            jaccard=round(al.jaccard, 4),
            verdict=match_verdict(al, self.params),
            passages=passages,
        )


def _rank_by_marginal_gain(
    found: list[tuple[Candidate, Alignment]], min_gain: int
) -> list[tuple[Candidate, Alignment]]:
    """Order sources greedily by the article text each newly explains.

    A merged article's second and third sources then come before near-copies
    of the first (re-sends, later updates), which explain nothing new; those
    follow, best containment first.
    """
    pending = sorted(found, key=lambda ca: (-ca[1].containment, -ca[1].coverage, ca[0].story_id))
    if not pending:
        return []
    explained = np.zeros_like(pending[0][1].article_mask)
    ranked: list[tuple[Candidate, Alignment]] = []
    while pending:
        # Equal gains (a lead copied from one story into a longer one): prefer
        # the story the article uses more of.
        gains = [(int((al.article_mask & ~explained).sum()), al.coverage) for _, al in pending]
        best = max(range(len(gains)), key=gains.__getitem__)
        if gains[best][0] < min_gain:
            break
        cand, al = pending.pop(best)
        explained |= al.article_mask
        ranked.append((cand, al))
    return ranked + pending
