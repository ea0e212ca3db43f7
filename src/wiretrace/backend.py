"""Where a detector keeps its state: the backend protocol and the embedded one.

The detector needs a durable story store and an LSH lookup. The embedded
backend pairs SQLite (system of record) with an in-memory index rebuilt from
it at start-up; a shared backend (Redis) keeps both in one place so that
replicas see each other's writes at once. Everything above this layer
(engine, service) is the same for both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from wiretrace.index import LSHIndex, TermFrequencies
from wiretrace.shingling import U32, U64, shingle_hashes
from wiretrace.store import Candidate, SQLiteStore, StoryPrint, StoryRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BackendStats:
    stories: int
    index_entries: int
    index_bytes: int  # resident bytes of the LSH structures in this process
    disk_bytes: int  # bytes of the store on disk (or in the shared server)
    rebuild_seconds: float  # time to make the index ready at start-up


class Backend(Protocol):
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

    def candidates(self, numbers: Sequence[int]) -> list[Candidate]: ...

    def stats(self) -> BackendStats: ...

    def close(self) -> None: ...


class EmbeddedBackend:
    """SQLite in the data dir + an in-memory LSH index rebuilt from it."""

    def __init__(self, data_dir: Path, index_fingerprint: str) -> None:
        self.store = SQLiteStore(data_dir, index_fingerprint)
        self.index = LSHIndex(background_merge=True)
        self.terms = TermFrequencies()
        started = time.perf_counter()
        for numbers, prints in self.store.iter_prints():
            self._add(numbers, prints)
        self.rebuild_seconds = time.perf_counter() - started
        log.info(
            "index rebuilt from %s: %d entries in %.2fs", self.store.path, self.index.entries, self.rebuild_seconds
        )

    def upsert(self, items: Sequence[tuple[StoryRecord, StoryPrint]]) -> None:
        if not items:
            return
        new, replaced = self.store.upsert(items)
        self._remove(replaced)
        self._add(new, [p for _, p in items])

    def delete(self, story_ids: Sequence[str]) -> int:
        removed = self.store.delete(story_ids)
        self._remove(removed)
        return len(removed)

    def _add(self, numbers: list[int], prints: list[StoryPrint]) -> None:
        if not prints:
            return
        counts = [p.band_keys.size for p in prints]
        self.index.insert(
            np.concatenate([p.band_keys for p in prints]), np.repeat(np.array(numbers, np.uint32), counts)
        )
        self.terms.add([shingle_hashes(p.tokens, 2) for p in prints])

    def _remove(self, rows: list[tuple[int, U32]]) -> None:
        if rows:
            self.index.remove(np.array([n for n, _ in rows], dtype=np.uint32))
            self.terms.remove([shingle_hashes(t, 2) for _, t in rows])

    def get(self, story_id: str) -> StoryRecord | None:
        return self.store.get(story_id)

    def lookup(self, band_keys: U64, max_bucket: int = 0) -> U32:
        return self.index.query(band_keys, max_bucket)

    def term_weights(self, bigrams: U32) -> np.ndarray:
        return self.terms.weights(bigrams)

    def candidates(self, numbers: Sequence[int]) -> list[Candidate]:
        return self.store.candidates(numbers)

    def stats(self) -> BackendStats:
        return BackendStats(
            stories=self.store.count(),
            index_entries=self.index.entries,
            index_bytes=self.index.nbytes + self.terms.nbytes,
            disk_bytes=self.store.disk_bytes(),
            rebuild_seconds=self.rebuild_seconds,
        )

    def close(self) -> None:
        self.index.close()
        self.store.close()
