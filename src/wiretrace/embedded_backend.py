"""The embedded backend: SQLite in the data dir and an in-memory LSH index rebuilt from it."""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import numpy as np

from wiretrace.filters import StoryAttributes
from wiretrace.index import LSHIndex, TermFrequencies
from wiretrace.pipeline import document_terms
from wiretrace.store import Change, SQLiteStore, store_error
from wiretrace.types import U32, U64, BackendStats, Candidate, StoryFilter, StoryPrint, StoryRecord, StoryText

log = logging.getLogger(__name__)

REFRESH_S = 5.0  # how often an embedded backend applies other processes' writes between matches
EXPIRE_BATCH = 1000  # stories deleted per transaction by retention (writers interleave between them)


P = ParamSpec("P")
R = TypeVar("R")


def _answered(method: Callable[Concatenate[EmbeddedBackend, P], R]) -> Callable[Concatenate[EmbeddedBackend, P], R]:
    """SQLite's failures on the way (a read of a store whose disk went away, say) as store errors."""

    @functools.wraps(method)
    def call(self: EmbeddedBackend, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as err:
            raise store_error(err, self.store.path) from err

    return call


class EmbeddedBackend:
    """SQLite in the data dir + an in-memory LSH index rebuilt from it.

    Several processes may serve one data dir: each keeps its own index and,
    before each lookup, applies the store's change log after the last change
    it has seen, so a story any of them acknowledged is matched by all.
    """

    def __init__(self, data_dir: Path, index_fingerprint: str) -> None:
        self.store = SQLiteStore(data_dir, index_fingerprint)
        self._sync = threading.Lock()  # one thread applies changes at a time
        self.index, self.terms, self.attributes, self._seen, self._stories = self._load()
        # Idle processes keep up too, so a match never waits for a long backlog (or a rebuild).
        self._closed = threading.Event()
        self._refresher = threading.Thread(target=self._refresh_forever, name="store-refresh", daemon=True)
        self._refresher.start()

    def _load(self) -> tuple[LSHIndex, TermFrequencies, StoryAttributes, int, int]:
        """A fresh index of the store as of one change (read in one transaction), and its story count."""
        started = time.perf_counter()
        index, terms, attributes = LSHIndex(background_merge=True), TermFrequencies(), StoryAttributes()
        stories = 0
        with self.store.snapshot() as seen:
            for numbers, sources, published in self.store.iter_attributes():
                attributes.set(numbers, sources, published)
            for numbers, prints in self.store.iter_prints():
                _add(index, terms, numbers, prints)
                stories += len(numbers)
        self.rebuild_seconds = time.perf_counter() - started
        log.info("index rebuilt from %s: %d entries in %.2fs", self.store.path, index.entries, self.rebuild_seconds)
        return index, terms, attributes, seen, stories

    @_answered
    def upsert(self, items: Sequence[tuple[StoryRecord, StoryPrint]]) -> None:
        if items:
            self._catch_up(self.store.upsert(items), [p for _, p in items], [r for r, _ in items])

    @_answered
    def delete(self, story_ids: Sequence[str]) -> int:
        change = self.store.delete(story_ids)
        if change.seq:
            self._catch_up(change, [], [])
        return len(change.removed)

    @_answered
    def expire(self, cutoff_ns: int) -> int:
        """Delete the stories published before the cutoff, oldest first, a batch per transaction."""
        deleted = 0
        while ids := self.store.published_before(cutoff_ns, EXPIRE_BATCH):
            deleted += self.delete(ids)
        if deleted:
            freed = self.store.reclaim()
            log.info("retention: deleted %d stories published before the cutoff, freed %d bytes", deleted, freed)
        return deleted

    @_answered
    def refresh(self) -> None:
        """Apply what other processes wrote since the last change seen here."""
        if self.store.changed():
            self._catch_up(None, [], [])

    def _refresh_forever(self) -> None:
        while not self._closed.wait(REFRESH_S):
            try:
                self.refresh()
            except Exception:  # a busy or closing store: the next match or round catches up
                log.exception("catching up with the store's change log failed")

    def _catch_up(self, own: Change | None, own_prints: list[StoryPrint], own_records: list[StoryRecord]) -> None:
        """Apply every logged change after the last one seen, in order: `own`
        (just committed here) from memory, the others' prints from the store."""
        with self._sync:
            if own is not None and own.seq <= self._seen:
                return  # another thread applied it already
            with self.store.snapshot() as last:
                if last == self._seen:
                    return
                changes = self.store.changes_since(self._seen)
                pruned = not changes or changes[0].seq != self._seen + 1
                theirs = [n for c in changes if own is None or c.seq != own.seq for n in c.added]
                prints = self.store.prints_of(theirs) if theirs and not pruned else {}
                attrs = self.store.attributes_of(list(prints)) if prints else {}
            if pruned:
                log.warning("the change log was pruned past change %d, the last seen here: rebuilding", self._seen)
                old = self.index
                self.index, self.terms, self.attributes, self._seen, self._stories = self._load()
                old.close()
                return
            gone: set[int] = set()  # added, then removed before this read: never indexed here
            for c in changes:
                # A story sent twice in one batch is stored, then replaced, within the change: index neither.
                dropped = {n for n, _ in c.removed}.intersection(c.added)
                removed = [r for r in c.removed if r[0] not in gone and r[0] not in dropped]
                _remove(self.index, self.terms, removed)
                # Attributes before the index: a number a lookup returns has them already.
                if own is not None and c.seq == own.seq:
                    kept = [i for i, n in enumerate(c.added) if n not in dropped] if dropped else range(len(c.added))
                    numbers = [c.added[i] for i in kept]
                    records = [own_records[i] for i in kept]
                    self.attributes.set(numbers, [r.source for r in records], [r.published_at_ns for r in records])
                    _add(self.index, self.terms, numbers, [own_prints[i] for i in kept])
                    self._stories += len(numbers) - len(removed)
                else:
                    present = [n for n in c.added if n in prints and n in attrs]
                    gone.update(n for n in c.added if n not in present)
                    self.attributes.set(present, [attrs[n][0] for n in present], [attrs[n][1] for n in present])
                    _add(self.index, self.terms, present, [prints[n] for n in present])
                    self._stories += len(present) - len(removed)
                self._seen = c.seq

    @_answered
    def get(self, story_id: str) -> StoryRecord | None:
        return self.store.get(story_id)

    def lookup(self, band_keys: U64, max_bucket: int = 0) -> U32:
        return self.index.query(band_keys, max_bucket)

    def term_weights(self, bigrams: U32) -> np.ndarray:
        return self.terms.weights(bigrams)

    def admit(self, numbers: U32, flt: StoryFilter) -> U32:
        return self.attributes.admit(numbers, flt)

    @_answered
    def candidates(self, numbers: Sequence[int]) -> list[Candidate]:
        return self.store.candidates(numbers)

    @_answered
    def texts(self, numbers: Sequence[int]) -> dict[int, StoryText]:
        return self.store.texts(numbers)

    @_answered
    def check(self) -> None:
        self.store.check()

    @_answered
    def stats(self) -> BackendStats:
        self.refresh()  # so the count includes what other processes acknowledged
        oldest, newest = self.store.published_range()
        return BackendStats(
            stories=self._stories,  # the stories indexed here; counting the store's rows took ~10 ms at 1M
            index_entries=self.index.entries,
            index_bytes=self.index.nbytes + self.terms.nbytes + self.attributes.nbytes,
            disk_bytes=self.store.disk_bytes(),
            rebuild_seconds=self.rebuild_seconds,
            oldest_published_ns=oldest,
            newest_published_ns=newest,
        )

    def close(self) -> None:
        self._closed.set()
        self._refresher.join()
        self.index.close()
        self.store.close()


def _add(index: LSHIndex, terms: TermFrequencies, numbers: list[int], prints: list[StoryPrint]) -> None:
    if not prints:
        return
    counts = [p.band_keys.size for p in prints]
    index.insert(np.concatenate([p.band_keys for p in prints]), np.repeat(np.array(numbers, np.uint32), counts))
    terms.add([document_terms(p.tokens) for p in prints])


def _remove(index: LSHIndex, terms: TermFrequencies, rows: list[tuple[int, U32]]) -> None:
    if rows:
        index.remove(np.array([n for n, _ in rows], dtype=np.uint32))
        terms.remove([document_terms(t) for _, t in rows])
