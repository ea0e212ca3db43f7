"""The values every layer passes around, in one module that imports nothing of wiretrace.

Stories and their prints (what the stores keep), candidates (what verification
reads), verdicts and match results (what the engine answers and the client
returns), store statistics, and the error a store raises when its settings
differ. They live here, not next to the code that makes them, so that the
client, the protobuf conversions and the server's metrics can use them without
importing the engine, the index or numba: ``import wiretrace.client`` stays
light (``tests/test_packaging.py`` checks it in a fresh interpreter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum

import numpy as np
import numpy.typing as npt

U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


class SettingsMismatchError(RuntimeError):
    """The data store was built with different index settings."""


class StoreError(RuntimeError):
    """The store failed a call for a reason of its own, not the request's; the message says which and what to do."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached now (a shared store's server is down): the same call may work later."""


class StoreFullError(StoreError):
    """The store has no room for a write (its disk is full); what it holds is intact and still readable."""


class MissingDependencyError(RuntimeError):
    """An optional feature was asked for without its extra installed; the message says how to install it."""

    def __init__(self, feature: str, module: str, extra: str) -> None:
        super().__init__(f"{feature} needs the {module!r} package: pip install 'wiretrace[{extra}]'")


@dataclass(frozen=True, slots=True)
class StoryRecord:
    """A wire story as the API carries it."""

    story_id: str
    body: str
    headline: str = ""
    source: str = ""
    published_at_ns: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoryPrint:
    """What the matcher needs of a story: its token hashes in order and its LSH keys.

    Shingles of any size and bigram statistics are derived from the tokens on
    demand (a few vectorised operations), so only the tokens are kept.
    """

    tokens: U32
    band_keys: U64


@dataclass(frozen=True, slots=True)
class StoryText:
    """What a match shows of a source story besides its passages."""

    headline: str
    body: str
    source: str
    published_at_ns: int | None


NS_PER_DAY = 86_400 * 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch, exactly (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


@dataclass(frozen=True, slots=True)
class StoryFilter:
    """Which stories may be sources of an article (MatchRequest's filters).

    Bounds are inclusive, in ns since the epoch; None: no bound. Once either
    bound is set, stories without a publication time do not pass (they cannot
    be shown to lie in the window); with neither, they do.
    """

    published_after_ns: int | None = None
    published_before_ns: int | None = None
    sources: frozenset[str] = frozenset()
    exclude_sources: frozenset[str] = frozenset()

    @property
    def windowed(self) -> bool:
        return self.published_after_ns is not None or self.published_before_ns is not None

    @property
    def active(self) -> bool:
        return self.windowed or bool(self.sources) or bool(self.exclude_sources)

    def problem(self) -> tuple[str, str] | None:
        """(field, reason) when the filter can admit nothing by construction, else None."""
        after, before = self.published_after_ns, self.published_before_ns
        if after is not None and before is not None and after > before:
            return "published_after", "is later than published_before; the window would hold no story"
        return None

    def admits(self, source: str, published_ns: int | None) -> bool:
        """The rule for one story (filters.StoryAttributes applies it to many at once)."""
        if self.windowed:
            if published_ns is None:
                return False
            if self.published_after_ns is not None and published_ns < self.published_after_ns:
                return False
            if self.published_before_ns is not None and published_ns > self.published_before_ns:
                return False
        if self.sources and source not in self.sources:
            return False
        return source not in self.exclude_sources


NO_FILTER = StoryFilter()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A story loaded for verification: its tokens, not its text (only the few shown need that)."""

    number: int
    story_id: str
    tokens: U32


@dataclass(frozen=True, slots=True)
class BackendStats:
    """Size of a store and of the index over it, as ``GetStats`` reports them."""

    stories: int
    index_entries: int
    index_bytes: int  # resident bytes of the LSH structures in this process
    disk_bytes: int  # bytes of the store on disk (or in the shared server)
    rebuild_seconds: float  # time to make the index ready at start-up
    oldest_published_ns: int | None = None  # publication times held (None: no story has one)
    newest_published_ns: int | None = None


class Verdict(IntEnum):
    """How an article relates to wire copy; mirrors wiretrace.v1.Verdict number for number."""

    UNSPECIFIED = 0
    UNRELATED = 1
    PARTIAL = 2
    DERIVED = 3
    VERBATIM = 4


class Evidence(IntEnum):
    """What makes a story a source; mirrors wiretrace.v1.Evidence number for number."""

    UNSPECIFIED = 0
    COPIED = 1  # passages copied from it
    REWRITTEN = 2  # rewritten from it: its rarer words and pairs, more than any rival's


@dataclass(frozen=True, slots=True)
class PassageMatch:
    """A shared passage: Unicode code point ranges [start, end) in the article and in the story."""

    article_start: int
    article_end: int
    story_start: int
    story_end: int
    similarity: float  # matched shingles / shingles spanned


@dataclass(frozen=True, slots=True)
class SourceMatch:
    """One wire story an article draws on.

    ``containment`` is the share of the article's prose inside passages shared
    with the story (or, for a rewrite, the IDF-weighted share of its word pairs
    found in the story), ``coverage`` the share of the story the article used,
    ``jaccard`` that of the two shingle sets.
    """

    story_id: str
    headline: str
    containment: float
    coverage: float
    jaccard: float
    verdict: Verdict
    passages: tuple[PassageMatch, ...]
    source: str = ""  # the story's, as stored
    published_at_ns: int | None = None
    editions: tuple[str, ...] = ()  # ids of other matching stories that are editions of this one
    evidence: Evidence = Evidence.UNSPECIFIED
    rewrite_probability: float = 0.0  # the rewrite model's, for the best rewrite candidate


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The answer for one article: its verdict and its sources, best first.

    ``original_fraction`` is the share of the article no source explains;
    ``candidates_checked`` how many stories the index proposed and were verified;
    ``reason`` why the verdict is what it is, in a sentence for a person.
    """

    verdict: Verdict
    matches: tuple[SourceMatch, ...]
    original_fraction: float
    candidates_checked: int
    reason: str = ""
