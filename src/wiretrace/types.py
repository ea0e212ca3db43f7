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


class Verdict(IntEnum):
    """How an article relates to wire copy; mirrors wiretrace.v1.Verdict number for number."""

    UNSPECIFIED = 0
    UNRELATED = 1
    PARTIAL = 2
    DERIVED = 3
    VERBATIM = 4


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


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The answer for one article: its verdict and its sources, best first.

    ``original_fraction`` is the share of the article no source explains;
    ``candidates_checked`` how many stories the index proposed and were verified.
    """

    verdict: Verdict
    matches: tuple[SourceMatch, ...]
    original_fraction: float
    candidates_checked: int
