"""Where a detector keeps its state: the backend protocol, and the one factory that picks a backend.

The detector needs a durable story store and an LSH lookup. The embedded
backend (``embedded_backend``) pairs SQLite (system of record) with an
in-memory index rebuilt from it at start-up; the shared backend
(``redis_backend``) keeps both in Redis so that replicas see each other's
writes at once. Everything above this layer (engine, service, batch tagging)
takes a ``Backend`` from ``open_backend`` and is the same for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from wiretrace.types import (
    U32,
    U64,
    Candidate,
    MissingDependencyError,
    StoryFilter,
    StoryPrint,
    StoryRecord,
    StoryText,
)

# Re-exported for code written before it moved to wiretrace.types.
from wiretrace.types import BackendStats as BackendStats

if TYPE_CHECKING:
    from wiretrace.config import Settings

SHARED_SCHEMES = ("redis://", "rediss://", "unix://")


class Backend(Protocol):
    """A durable story store and an LSH lookup over it.

    Failures of the store itself come out as ``StoreUnavailableError`` (cannot
    be reached now: retry) or ``StoreFullError`` (no room for a write; reads
    still work), never as the driver's own exceptions.
    """

    def upsert(self, items: Sequence[tuple[StoryRecord, StoryPrint]]) -> None:
        """Store durably and make matchable; returns only once durable."""

    def delete(self, story_ids: Sequence[str]) -> int:
        """Remove stories; returns how many existed."""

    def get(self, story_id: str) -> StoryRecord | None: ...

    def lookup(self, band_keys: U64, max_bucket: int = 0) -> U32:
        """Story numbers sharing any of the band keys (with repeats); with
        `max_bucket`, keys holding more stories than that are skipped."""

    def term_weights(self, bigrams: U32) -> np.ndarray:
        """Informativeness of each bigram in [0, 1] over the indexed stories."""

    def admit(self, numbers: U32, flt: StoryFilter) -> U32:
        """The numbers (repeats and order kept) whose stories pass the filter."""

    def expire(self, cutoff_ns: int) -> int:
        """Delete every story published before `cutoff_ns` and reclaim its space; returns how many."""

    def candidates(self, numbers: Sequence[int]) -> list[Candidate]: ...

    def texts(self, numbers: Sequence[int]) -> dict[int, StoryText]:
        """What a match shows of the stories still stored, by number."""

    def refresh(self) -> None:
        """Catch up with writes made through other processes (before a lookup)."""

    def check(self) -> None:
        """Raise StoreUnavailableError unless the store can be used now (cheap: health calls it every second)."""

    def stats(self) -> BackendStats: ...

    def close(self) -> None: ...


def open_backend(settings: Settings) -> Backend:
    """The backend ``settings.server.store`` names: Redis for ``redis://…``, else the embedded store in the data dir.

    Raises ``MissingDependencyError`` (a one-line message with the install
    command) when Redis is asked for without the ``redis`` extra, ``ValueError``
    for a store URL of no known kind, and ``SettingsMismatchError`` when the
    store was built with other index settings.
    """
    store = settings.server.store
    if store and not store.startswith(SHARED_SCHEMES):
        raise ValueError(f"--store {store!r}: expected redis://HOST:PORT/DB, or leave it empty for the data dir")
    return open_store(store or settings.server.data_dir, settings.index.fingerprint())


def open_store(target: str | Path, index_fingerprint: str) -> Backend:
    """The backend at `target`: a ``redis://`` (``rediss://``, ``unix://``) URL, or else a data directory."""
    if isinstance(target, str) and target.startswith(SHARED_SCHEMES):
        try:
            from wiretrace.redis_backend import open_redis_backend
        except ModuleNotFoundError as err:
            if err.name != "redis":
                raise
            raise MissingDependencyError("a redis:// store", "redis", "redis") from None
        return open_redis_backend(target, index_fingerprint)
    from wiretrace.embedded_backend import EmbeddedBackend

    return EmbeddedBackend(Path(target), index_fingerprint)


def __getattr__(name: str) -> Any:
    """``wiretrace.backend.EmbeddedBackend`` still works (it lives in ``embedded_backend`` now)."""
    if name == "EmbeddedBackend":
        from wiretrace.embedded_backend import EmbeddedBackend

        return EmbeddedBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
