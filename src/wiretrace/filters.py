"""Masking a query's hits with the request's filter (``types.StoryFilter``).

A newsroom matches today's article against months of wire: a story published
after the article cannot be its source, and its own outlet's copy is not one
either. The filter is applied to the index's hits before candidates are
counted and ranked, so a story filtered out takes no candidate slot. To make
that cheap, each backend keeps every story's publication time and source (as
a small integer code) in arrays indexed by story number: masking a query's
hits is two gathers and compares, not a read of the store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np

from wiretrace.types import U32, StoryFilter

NO_TIME = np.iinfo(np.int64).min  # a story stored without published_at


class StoryAttributes:
    """Publication time and source of every story, by story number, for masking hits.

    12 bytes a story (int64 time, int32 source code, -1 for a number never
    set: such a number passes no active filter). Writers set a story's
    attributes before its number enters the index, and readers take the arrays
    after the index answered, so any number a reader has is covered. Numbers
    are never reused, so a number's attributes never change once set.
    """

    def __init__(self) -> None:
        # One tuple, replaced whole when it grows: a reader never pairs arrays of two sizes.
        self._arrays = (np.full(1024, NO_TIME, dtype=np.int64), np.full(1024, -1, dtype=np.int32))
        self._codes: dict[str, int] = {"": 0}
        self._lock = threading.Lock()

    def set(self, numbers: Sequence[int], sources: Sequence[str], published_ns: Sequence[int | None]) -> None:
        if not len(numbers):
            return
        with self._lock:
            nums = np.asarray(numbers, dtype=np.int64)
            published, source = self._arrays
            top = int(nums.max())
            if top >= published.size:
                size = max(top + 1, 2 * published.size)
                published = np.concatenate([published, np.full(size - published.size, NO_TIME, dtype=np.int64)])
                source = np.concatenate([source, np.full(size - source.size, -1, dtype=np.int32)])
            published[nums] = [NO_TIME if p is None else p for p in published_ns]
            source[nums] = [self._code(s) for s in sources]
            self._arrays = (published, source)  # values first, then (grown) arrays

    def _code(self, source: str) -> int:
        code = self._codes.get(source)
        if code is None:
            code = self._codes[source] = len(self._codes)
        return code

    def unknown(self, numbers: U32) -> U32:
        """The distinct numbers never set (a cache fetches them before `admit`)."""
        source = self._arrays[1]
        distinct = np.unique(numbers)
        inside = distinct < source.size
        return np.concatenate([distinct[~inside], distinct[inside][source[distinct[inside]] < 0]])

    def admit(self, numbers: U32, flt: StoryFilter) -> U32:
        """The numbers (repeats kept, order kept) whose stories pass `flt`."""
        if not flt.active or numbers.size == 0:
            return numbers
        published, source = self._arrays
        numbers = numbers[numbers < published.size]
        codes = source[numbers]
        keep = codes >= 0
        if flt.windowed:
            when = published[numbers]
            keep &= when != NO_TIME
            if flt.published_after_ns is not None:
                keep &= when >= flt.published_after_ns
            if flt.published_before_ns is not None:
                keep &= when <= flt.published_before_ns
        if flt.sources or flt.exclude_sources:
            # A table by code (+1: never-set numbers have -1) and one gather: np.isin cost ~0.1 ms a call.
            # The last slot stays False for codes made since this table (their names were unknown).
            allowed = np.zeros(len(self._codes) + 2, dtype=bool)
            allowed[self._codes_of(flt.sources) + 1 if flt.sources else slice(1, -1)] = True
            allowed[self._codes_of(flt.exclude_sources) + 1] = False
            keep &= allowed[np.minimum(codes + 1, allowed.size - 1)]
        return numbers[keep]

    def _codes_of(self, names: Iterable[str]) -> np.ndarray:
        codes = self._codes
        return np.array([codes[n] for n in names if n in codes], dtype=np.intp)

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self._arrays)
